//! The plots' one font, embedded: DejaVu Sans from the `dejavu` crate, registered with plotters'
//! `ab_glyph` renderer, so text renders the same on a machine with no fontconfig or system fonts.

use std::sync::OnceLock;

use ganpo::{Error, Result};
use plotters::style::FontStyle;

/// The family every plot asks for; plotters' own defaults (tick labels) ask for it too.
pub const FONT_FAMILY: &str = "sans-serif";

/// Registers DejaVu Sans (regular) as [`FONT_FAMILY`], once per process; later calls return the
/// first call's outcome.
pub fn register_embedded_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font did not parse".to_string())
        })
        .clone()
        .map_err(|message| Error::io("registering the plot font", std::io::Error::other(message)))
}
