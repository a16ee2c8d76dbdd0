//! Decoding a plot's PNG in tests: its size, and whether anything was drawn on it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;

/// What a decoded plot looks like.
#[derive(Debug)]
pub struct PngSummary {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Distinct RGB colors (antialiased text and lines give many).
    pub colors: usize,
    /// Fraction of pixels that are not the white background.
    pub ink: f64,
    /// Every distinct RGB color.
    pub palette: HashSet<[u8; 3]>,
}

/// Decodes the 8-bit RGB(A) PNG at `path`.
pub fn summarize(path: &Path) -> PngSummary {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(file).read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("{}: unexpected color type {other:?}", path.display()),
    };
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let ink = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    PngSummary {
        width: info.width,
        height: info.height,
        colors: pixels.iter().copied().collect::<HashSet<_>>().len(),
        ink: ink as f64 / pixels.len() as f64,
        palette: pixels.into_iter().collect(),
    }
}

/// Asserts `path` is a `ganpo_cli::plot::WIDTH`×`HEIGHT` PNG with text, axes and lines on it.
pub fn assert_is_a_drawn_plot(path: &Path) {
    let s = summarize(path);
    assert_eq!(
        (s.width, s.height),
        (ganpo_cli::plot::WIDTH, ganpo_cli::plot::HEIGHT),
        "{}",
        path.display()
    );
    assert!(
        s.colors > 30,
        "{}: only {} colors",
        path.display(),
        s.colors
    );
    assert!(
        s.ink > 0.01 && s.ink < 0.6,
        "{}: {:.3} of the pixels drawn",
        path.display(),
        s.ink
    );
}
