//! Calendar time and Python's `strftime` (C locale, glibc extensions) for chat templates' `strftime_now`.
//!
//! Llama-3.x templates stamp "Today Date: {{ strftime_now('%d %b %Y') }}" into the system prompt, so the
//! rendered text, and the tokens trained on, depend on the clock. ganpo reads UTC (transformers reads the
//! machine's local time) and lets callers pin the time with [`CivilDateTime`] for reproducible data.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A date and time of day in the proleptic Gregorian calendar, without time zone (Python's naive
/// `datetime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDateTime {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl CivilDateTime {
    /// A validated date and time; `month` 1–12, `day` within the month, `hour` < 24, `minute` and
    /// `second` < 60.
    pub fn new(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Result<Self> {
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(i64::from(year), month)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return Err(Error::Config(format!(
                "invalid date and time {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"
            )));
        }
        Ok(CivilDateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// The UTC date and time `seconds` after 1970-01-01T00:00:00.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        let days = seconds.div_euclid(86_400);
        let secs = seconds.rem_euclid(86_400);
        // H. Hinnant's `civil_from_days`.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        CivilDateTime {
            year: year.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs % 3600 / 60) as u32,
            second: (secs % 60) as u32,
        }
    }

    /// The current UTC date and time.
    pub fn now_utc() -> Self {
        let seconds = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        CivilDateTime::from_unix_seconds(seconds)
    }

    fn unix_seconds(&self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }

    /// 0 = Sunday.
    fn weekday(&self) -> u32 {
        (days_from_civil(i64::from(self.year), self.month, self.day) + 4).rem_euclid(7) as u32
    }

    /// 1-based day of the year.
    fn ordinal(&self) -> u32 {
        (days_from_civil(i64::from(self.year), self.month, self.day)
            - days_from_civil(i64::from(self.year), 1, 1)) as u32
            + 1
    }

    /// ISO 8601 week-based year and week number (`%G`, `%V`).
    fn iso_week(&self) -> (i64, u32) {
        let iso_weekday = (self.weekday() + 6) % 7 + 1; // Monday = 1
        let week = (self.ordinal() as i64 - iso_weekday as i64 + 10) / 7;
        let year = i64::from(self.year);
        if week < 1 {
            let prev = CivilDateTime {
                year: self.year - 1,
                month: 12,
                day: 31,
                ..*self
            };
            return prev.iso_week();
        }
        let weeks_in_year = {
            let jan1 = CivilDateTime {
                month: 1,
                day: 1,
                ..*self
            }
            .weekday();
            if jan1 == 4 || (jan1 == 3 && is_leap(year)) {
                53
            } else {
                52
            }
        };
        if week > weeks_in_year {
            (year + 1, 1)
        } else {
            (year, week as u32)
        }
    }

    /// Formats like Python's `datetime.strftime` on Linux (glibc, C locale): the `-`, `_`, `0` and `^`
    /// flags work, `%E`/`%O` modifiers are ignored, `%z`/`%Z` are empty (a naive time) and unknown
    /// directives are copied through unchanged.
    pub fn strftime(&self, format: &str) -> String {
        let mut out = String::with_capacity(format.len() + 16);
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut spec = String::from("%");
            let mut flag = None;
            while let Some(&f) = chars.peek() {
                if matches!(f, '-' | '_' | '0' | '^' | '#') {
                    flag = Some(f);
                    spec.push(f);
                    chars.next();
                } else {
                    break;
                }
            }
            if let Some(&m) = chars.peek()
                && matches!(m, 'E' | 'O')
            {
                spec.push(m);
                chars.next();
            }
            let Some(d) = chars.next() else {
                out.push_str(&spec);
                break;
            };
            match self.directive(d, flag) {
                Some(text) => out.push_str(&text),
                None => {
                    out.push_str(&spec);
                    out.push(d);
                }
            }
        }
        out
    }

    fn directive(&self, d: char, flag: Option<char>) -> Option<String> {
        let num = |value: i64, width: usize, pad: char| -> String {
            match flag {
                Some('-') => value.to_string(),
                Some('_') => format!("{value:>width$}"),
                Some('0') => format!("{value:0>width$}"),
                _ if pad == ' ' => format!("{value:>width$}"),
                _ => format!("{value:0>width$}"),
            }
        };
        let text = |s: &str| -> String {
            if flag == Some('^') {
                s.to_uppercase()
            } else {
                s.to_owned()
            }
        };
        let hour12 = match self.hour % 12 {
            0 => 12,
            h => h,
        };
        let weekday = self.weekday();
        let day_name = DAYS[weekday as usize];
        let month_name = MONTHS[(self.month - 1) as usize];
        let am_pm = if self.hour < 12 { "AM" } else { "PM" };
        let week_of_year =
            |first_weekday: u32| (self.ordinal() + 6 - (weekday + 7 - first_weekday) % 7) / 7;
        Some(match d {
            'a' => text(&day_name[..3]),
            'A' => text(day_name),
            'b' | 'h' => text(&month_name[..3]),
            'B' => text(month_name),
            'c' => self.strftime("%a %b %e %H:%M:%S %Y"),
            'C' => num(i64::from(self.year).div_euclid(100), 2, '0'),
            'd' => num(i64::from(self.day), 2, '0'),
            'D' | 'x' => self.strftime("%m/%d/%y"),
            'e' => num(i64::from(self.day), 2, ' '),
            'f' => "000000".to_owned(),
            'F' => self.strftime("%Y-%m-%d"),
            'g' => num(self.iso_week().0.rem_euclid(100), 2, '0'),
            'G' => num(self.iso_week().0, 1, '0'),
            'H' => num(i64::from(self.hour), 2, '0'),
            'I' => num(i64::from(hour12), 2, '0'),
            'j' => num(i64::from(self.ordinal()), 3, '0'),
            'k' => num(i64::from(self.hour), 2, ' '),
            'l' => num(i64::from(hour12), 2, ' '),
            'm' => num(i64::from(self.month), 2, '0'),
            'M' => num(i64::from(self.minute), 2, '0'),
            'n' => "\n".to_owned(),
            'p' => text(am_pm),
            'P' => am_pm.to_lowercase(),
            'r' => self.strftime("%I:%M:%S %p"),
            'R' => self.strftime("%H:%M"),
            's' => self.unix_seconds().to_string(),
            'S' => num(i64::from(self.second), 2, '0'),
            't' => "\t".to_owned(),
            'T' | 'X' => self.strftime("%H:%M:%S"),
            'u' => num(i64::from((weekday + 6) % 7 + 1), 1, '0'),
            'U' => num(i64::from(week_of_year(0)), 2, '0'),
            'V' => num(i64::from(self.iso_week().1), 2, '0'),
            'w' => num(i64::from(weekday), 1, '0'),
            'W' => num(i64::from(week_of_year(1)), 2, '0'),
            'y' => num(i64::from(self.year).rem_euclid(100), 2, '0'),
            'Y' => num(i64::from(self.year), 1, '0'),
            'z' | 'Z' => String::new(),
            '%' => "%".to_owned(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_round_trip_through_civil_dates() {
        for seconds in [0, 951_782_400, 1_709_629_622, -86_401, 4_102_444_799] {
            assert_eq!(
                CivilDateTime::from_unix_seconds(seconds).unix_seconds(),
                seconds
            );
        }
        // 2024-03-05 09:07:02 UTC
        assert_eq!(
            CivilDateTime::from_unix_seconds(1_709_629_622),
            CivilDateTime::new(2024, 3, 5, 9, 7, 2).unwrap()
        );
    }

    #[test]
    fn invalid_dates_are_rejected() {
        assert!(CivilDateTime::new(2023, 2, 29, 0, 0, 0).is_err());
        assert!(CivilDateTime::new(2024, 2, 29, 0, 0, 0).is_ok());
        assert!(CivilDateTime::new(2024, 13, 1, 0, 0, 0).is_err());
        assert!(CivilDateTime::new(2024, 1, 1, 24, 0, 0).is_err());
    }
}
