//! The one font every document is set in, IPAexGothic, built into the binary so that rendering
//! needs no file and no network (closed networks, LGWAN), and the measuring of text in it that
//! line wrapping needs. Where the font comes from and its licence: `assets/fonts/README.md`.

use std::sync::OnceLock;

use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};

use super::DocumentError;

/// IPAexGothic 004.01 (IPA Font License v1.0), from Debian's `fonts-ipaexfont-gothic`.
pub(crate) static FONT_DATA: &[u8] = include_bytes!("../../assets/fonts/ipaexg.ttf");

/// The font's licence, IPA Font License Agreement v1.0 in Japanese and English. The licence
/// requires it to accompany the font, and the font travels inside the binary: the server
/// should offer this text wherever it lists third-party licences.
pub const FONT_LICENSE_TEXT: &str =
    include_str!("../../assets/fonts/IPA_Font_License_Agreement_v1.0.txt");

/// Advance widths in em units, looked up from the font's own tables so that wrapping agrees
/// with what the PDF writer will draw.
pub(crate) struct Metrics {
    font: FontRef<'static>,
    units_per_em: f32,
}

impl Metrics {
    fn load() -> Option<Self> {
        let font = FontRef::new(FONT_DATA).ok()?;
        let units_per_em = f32::from(
            font.metrics(Size::unscaled(), LocationRef::default())
                .units_per_em,
        );
        (units_per_em > 0.0).then_some(Self { font, units_per_em })
    }

    /// The shared metrics of the embedded font.
    pub(crate) fn get() -> Result<&'static Metrics, DocumentError> {
        static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();
        METRICS
            .get_or_init(Metrics::load)
            .as_ref()
            .ok_or(DocumentError::Font)
    }

    /// Width of one character in points at `font_size`. A character the font lacks is drawn
    /// as the font's missing-glyph box, so it is measured as that glyph.
    pub(crate) fn char_width(&self, character: char, font_size: f32) -> f32 {
        let glyph = self.font.charmap().map(character).unwrap_or_default();
        let advance = self
            .font
            .glyph_metrics(Size::unscaled(), LocationRef::default())
            .advance_width(glyph)
            .unwrap_or(self.units_per_em);
        advance / self.units_per_em * font_size
    }

    /// Width of a string in points at `font_size`.
    pub(crate) fn text_width(&self, text: &str, font_size: f32) -> f32 {
        text.chars().map(|c| self.char_width(c, font_size)).sum()
    }

    /// Whether the font has a glyph for `character`; text with characters it lacks still
    /// renders (as boxes), and callers can warn about it.
    pub(crate) fn covers(&self, character: char) -> bool {
        self.font.charmap().map(character).is_some()
    }
}

/// The characters in `text` that the embedded font cannot draw, in order of first appearance.
/// A name written with a rare variant kanji (異体字) may need checking before a document is
/// issued; the document itself still renders, with a box in their place.
pub fn unsupported_characters(text: &str) -> Result<Vec<char>, DocumentError> {
    let metrics = Metrics::get()?;
    let mut missing = Vec::new();
    for character in text.chars() {
        if !character.is_control() && !metrics.covers(character) && !missing.contains(&character) {
            missing.push(character);
        }
    }
    Ok(missing)
}
