//! Writes laid-out pages as a PDF with krilla, which subsets the embedded font to the glyphs
//! used and writes the ToUnicode map that keeps the text extractable. The PDF is tagged: every
//! line of text is a paragraph (the title a heading) in reading order, English lines marked as
//! English in a Japanese document, and rules, shading and footers are artifacts that screen
//! readers skip.

use std::num::NonZeroU16;

use chrono::{DateTime, Datelike, Timelike, Utc};
use krilla::color::luma;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::{DateTime as PdfDateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::tagging::{Artifact, ArtifactType, ContentTag, Node, SpanTag, Tag, TagGroup, TagTree};
use krilla::text::{Font, TextDirection};
use krilla::Document;

use super::font::FONT_DATA;
use super::layout::{Op, Role, PAGE_HEIGHT, PAGE_WIDTH};
use super::DocumentError;

/// Draws `pages` and returns the PDF bytes. `issued` becomes the creation date, so that the
/// same document renders to the same bytes whenever it is rendered.
pub(crate) fn write(
    pages: Vec<Vec<Op>>,
    title: &str,
    issued: DateTime<Utc>,
) -> Result<Vec<u8>, DocumentError> {
    let font = Font::new(FONT_DATA.into(), 0).ok_or(DocumentError::Font)?;
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| DocumentError::Pdf("invalid page size".to_string()))?;
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(title.to_string())
            .language("ja".to_string())
            .creator("renkei".to_string())
            .creation_date(pdf_date(issued)),
    );
    let mut tree = TagTree::new();
    for ops in pages {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            if let Some(node) = draw(&mut surface, &font, op) {
                tree.push(node);
            }
        }
        surface.finish();
        page.finish();
    }
    document.set_tag_tree(tree);
    document
        .finish()
        .map_err(|error| DocumentError::Pdf(format!("{error:?}")))
}

fn pdf_date(at: DateTime<Utc>) -> PdfDateTime {
    let year = u16::try_from(at.year()).unwrap_or(0);
    PdfDateTime::new(year)
        .month(at.month() as u8)
        .day(at.day() as u8)
        .hour(at.hour() as u8)
        .minute(at.minute() as u8)
        .second(at.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

fn fill(gray: u8) -> Fill {
    Fill {
        paint: luma::Color::new(gray).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

/// Draws one instruction; text in the reading order comes back as its node of the tag tree.
fn draw(surface: &mut Surface<'_>, font: &Font, op: Op) -> Option<Node> {
    match op {
        Op::Text {
            x,
            y,
            size,
            gray,
            role,
            text,
        } => {
            surface.set_fill(Some(fill(gray)));
            surface.set_stroke(None);
            // Lines with no Japanese in them are the English translations.
            let lang = text.is_ascii().then_some("en");
            let content = match role {
                Role::Footer => ContentTag::Artifact(Artifact::with_kind(ArtifactType::Footer)),
                Role::Heading | Role::Body => ContentTag::Span(SpanTag::empty().with_lang(lang)),
            };
            let id = surface.start_tagged(content);
            surface.draw_text(
                Point::from_xy(x, y),
                font.clone(),
                size,
                &text,
                false,
                TextDirection::Auto,
            );
            surface.end_tagged();
            let mut group = match role {
                Role::Footer => return None,
                Role::Heading => TagGroup::new(Tag::Hn(NonZeroU16::MIN, Some(text))),
                Role::Body => TagGroup::new(Tag::P),
            };
            group.push(id);
            Some(group.into())
        }
        Op::Rule {
            x1,
            y1,
            x2,
            y2,
            width,
        } => {
            let mut builder = PathBuilder::new();
            builder.move_to(x1, y1);
            builder.line_to(x2, y2);
            if let Some(path) = builder.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    width,
                    ..Stroke::default()
                }));
                surface.start_tagged(layout_artifact());
                surface.draw_path(&path);
                surface.end_tagged();
            }
            None
        }
        Op::Shade {
            x,
            y,
            width,
            height,
            gray,
        } => {
            let mut builder = PathBuilder::new();
            if let Some(rect) = Rect::from_xywh(x, y, width, height) {
                builder.push_rect(rect);
            }
            if let Some(path) = builder.finish() {
                surface.set_stroke(None);
                surface.set_fill(Some(fill(gray)));
                surface.start_tagged(layout_artifact());
                surface.draw_path(&path);
                surface.end_tagged();
            }
            None
        }
    }
}

fn layout_artifact() -> ContentTag<'static> {
    ContentTag::Artifact(Artifact::with_kind(ArtifactType::Layout))
}
