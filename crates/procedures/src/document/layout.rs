//! Page layout for the documents: Japanese-aware line wrapping and a simple flowing page model
//! (text, rules and shaded boxes placed top to bottom, a new A4 page when one is full). Layout
//! is kept apart from PDF writing so that every page is known, and numbered, before any of it
//! is drawn.

use super::font::Metrics;

/// A4 in PDF points.
pub(crate) const PAGE_WIDTH: f32 = 595.28;
pub(crate) const PAGE_HEIGHT: f32 = 841.89;
/// 20 mm margins.
pub(crate) const MARGIN: f32 = 56.7;
pub(crate) const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
/// Lowest baseline for content; the footer sits below it.
const CONTENT_BOTTOM: f32 = PAGE_HEIGHT - MARGIN - 14.0;

/// Characters that must not begin a line (行頭禁則): closing brackets and punctuation.
const NO_LINE_START: &str = "、。，．,.)]}）〕］｝〉》」』】〙〗〟’”・：；:;!?！？ゝゞーァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎゕゖ々〻";
/// Characters that must not end a line (行末禁則): opening brackets.
const NO_LINE_END: &str = "([{（〔［｛〈《「『【〘〖〝‘“";

/// What a piece of text is, for the tag tree that screen readers follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The document title.
    Heading,
    /// Content, read in the order it was laid out.
    Body,
    /// Page furniture (footers), left out of the reading order.
    Footer,
}

/// One drawing instruction; coordinates are points from the top-left corner of the page,
/// and `y` of text is its baseline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        gray: u8,
        role: Role,
        text: String,
    },
    Rule {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    },
    Shade {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        gray: u8,
    },
}

/// Breaks `text` into lines no wider than `max_width` points at `size`. A line break in the
/// text is kept; Japanese may break between any two characters except where 禁則 forbids it;
/// runs of Latin letters and digits (words, URLs, numbers) break only at spaces unless a
/// single run is wider than the line, which is then cut where it must be.
pub(crate) fn wrap(metrics: &Metrics, text: &str, size: f32, max_width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        wrap_paragraph(
            metrics,
            paragraph.trim_end_matches('\r'),
            size,
            max_width,
            &mut lines,
        );
    }
    lines
}

fn tokens(paragraph: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    for character in paragraph.chars() {
        if character.is_ascii_graphic() {
            word.push(character);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        tokens.push(character.to_string());
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

fn wrap_paragraph(
    metrics: &Metrics,
    paragraph: &str,
    size: f32,
    max_width: f32,
    lines: &mut Vec<String>,
) {
    let first_line = lines.len();
    let mut line = String::new();
    let mut width = 0.0f32;
    for token in tokens(paragraph) {
        let token_width = metrics.text_width(&token, size);
        let is_space = token.chars().all(char::is_whitespace);
        // Only a single mark hangs; a run such as `...` or `::` is an ordinary word.
        let is_closing =
            token.chars().count() == 1 && token.chars().all(|c| NO_LINE_START.contains(c));
        if is_closing && line.is_empty() && lines.len() > first_line {
            // The line just broke (at a space): the mark hangs on the line before, or, if one
            // already hangs there, that line's last character comes down with it (追い出し).
            if let Some(previous) = lines.last_mut() {
                if previous
                    .chars()
                    .last()
                    .is_some_and(|c| NO_LINE_START.contains(c))
                {
                    line = take_last_character(previous);
                    if previous.is_empty() {
                        lines.pop();
                    }
                    line.push_str(&token);
                    width = metrics.text_width(&line, size);
                } else {
                    previous.push_str(&token);
                }
                continue;
            }
        }
        if width + token_width <= max_width {
            if !(line.is_empty() && is_space && !lines.is_empty()) {
                line.push_str(&token);
                width += token_width;
            }
            continue;
        }
        if is_space {
            // A space at the break is dropped rather than carried to the next line.
            push_line(lines, &mut line);
            width = 0.0;
            continue;
        }
        if is_closing && !line.is_empty() {
            if width <= max_width {
                // ぶら下げ: one closing mark hangs past the margin instead of starting a line.
                line.push_str(&token);
                width += token_width;
                continue;
            }
            // A mark already hangs: 追い出し, the last character and its marks move down.
            let moved = take_last_character(&mut line);
            if !line.is_empty() {
                push_line(lines, &mut line);
            }
            line = moved + &token;
            width = metrics.text_width(&line, size);
            continue;
        }
        let mut carried = String::new();
        if let Some(last) = line.chars().last() {
            if NO_LINE_END.contains(last) && line.chars().count() > 1 {
                line.pop();
                carried.push(last);
            }
        }
        if !line.is_empty() {
            push_line(lines, &mut line);
        }
        line = carried;
        width = metrics.text_width(&line, size);
        for character in token.chars() {
            let char_width = metrics.char_width(character, size);
            if width + char_width > max_width && !line.is_empty() {
                push_line(lines, &mut line);
                width = 0.0;
            }
            line.push(character);
            width += char_width;
        }
    }
    push_line(lines, &mut line);
}

/// Removes the last character that may start a line, with the closing marks after it.
fn take_last_character(line: &mut String) -> String {
    let mut moved = Vec::new();
    while let Some(character) = line.pop() {
        moved.push(character);
        if !NO_LINE_START.contains(character) {
            break;
        }
    }
    moved.into_iter().rev().collect()
}

fn push_line(lines: &mut Vec<String>, line: &mut String) {
    lines.push(line.trim_end().to_string());
    line.clear();
}

/// Places content top to bottom over as many pages as it needs.
pub(crate) struct Flow {
    pub(crate) metrics: &'static Metrics,
    pub(crate) pages: Vec<Vec<Op>>,
    /// The top of the free space on the current page.
    pub(crate) y: f32,
}

impl Flow {
    pub(crate) fn new(metrics: &'static Metrics) -> Self {
        Self {
            metrics,
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Starts a new page unless `height` more points fit on this one.
    pub(crate) fn ensure(&mut self, height: f32) {
        if self.y + height > CONTENT_BOTTOM && self.y > MARGIN {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    pub(crate) fn gap(&mut self, height: f32) {
        self.y += height;
    }

    pub(crate) fn push(&mut self, op: Op) {
        self.page().push(op);
    }

    pub(crate) fn text_at(&mut self, x: f32, baseline: f32, size: f32, gray: u8, text: &str) {
        self.push(Op::Text {
            x,
            y: baseline,
            size,
            gray,
            role: Role::Body,
            text: text.to_string(),
        });
    }

    /// One line of text centred on the page.
    pub(crate) fn centered(&mut self, size: f32, gray: u8, role: Role, text: &str) {
        let leading = size * 1.5;
        self.ensure(leading);
        let width = self.metrics.text_width(text, size);
        let x = ((PAGE_WIDTH - width) / 2.0).max(MARGIN);
        let baseline = self.y + size * 1.1;
        self.push(Op::Text {
            x,
            y: baseline,
            size,
            gray,
            role,
            text: text.to_string(),
        });
        self.y += leading;
    }

    /// One line of text ending at the right margin.
    pub(crate) fn right_aligned(&mut self, size: f32, gray: u8, text: &str) {
        let leading = size * 1.5;
        self.ensure(leading);
        let width = self.metrics.text_width(text, size);
        let x = (PAGE_WIDTH - MARGIN - width).max(MARGIN);
        let baseline = self.y + size * 1.1;
        self.text_at(x, baseline, size, gray, text);
        self.y += leading;
    }

    /// Wrapped text, flowing onto the next page where it must; `indent` shifts it right.
    pub(crate) fn paragraph(&mut self, indent: f32, size: f32, gray: u8, text: &str) {
        let leading = size * 1.6;
        for line in wrap(self.metrics, text, size, CONTENT_WIDTH - indent) {
            self.ensure(leading);
            let baseline = self.y + size * 1.1;
            self.text_at(MARGIN + indent, baseline, size, gray, &line);
            self.y += leading;
        }
    }

    /// A numbered paragraph whose wrapped lines align after the number (ぶら下げインデント).
    pub(crate) fn numbered(&mut self, indent: f32, size: f32, gray: u8, number: &str, text: &str) {
        let leading = size * 1.6;
        let label_width = self.metrics.text_width(number, size);
        let lines = wrap(
            self.metrics,
            text,
            size,
            CONTENT_WIDTH - indent - label_width,
        );
        for (index, line) in lines.iter().enumerate() {
            self.ensure(leading);
            let baseline = self.y + size * 1.1;
            if index == 0 {
                self.text_at(MARGIN + indent, baseline, size, gray, number);
            }
            self.text_at(MARGIN + indent + label_width, baseline, size, gray, line);
            self.y += leading;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metrics() -> &'static Metrics {
        Metrics::get().expect("embedded font loads")
    }

    fn without_spaces(text: &str) -> String {
        text.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn short_text_stays_on_one_line() {
        assert_eq!(wrap(metrics(), "受付票", 11.0, 200.0), vec!["受付票"]);
    }

    #[test]
    fn explicit_line_breaks_are_kept() {
        assert_eq!(
            wrap(metrics(), "一行目\n二行目", 11.0, 200.0),
            vec!["一行目", "二行目"]
        );
    }

    #[test]
    fn latin_words_break_at_spaces() {
        let lines = wrap(metrics(), "the quick brown fox jumps over", 10.0, 60.0);
        assert!(lines.len() > 1);
        for line in &lines {
            for word in line.split(' ') {
                assert!(
                    "the quick brown fox jumps over"
                        .split(' ')
                        .any(|w| w == word),
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn closing_punctuation_never_starts_a_line() {
        // 10 full-width characters per line at 10pt in 100pt: the 。 falls at a line start.
        let lines = wrap(metrics(), "あいうえおかきくけこ。さしすせそ", 10.0, 100.0);
        assert_eq!(lines[0], "あいうえおかきくけこ。");
        let lines = wrap(metrics(), "あいうえおかきくけ「こさしすせそ」", 10.0, 100.0);
        assert!(!lines[0].ends_with('「'), "{lines:?}");
    }

    #[test]
    fn a_second_closing_mark_pushes_the_last_character_down() {
        // 10 characters fill the 100pt line; ） hangs, 。 cannot also hang: こ comes down.
        let lines = wrap(metrics(), "あいうえおかきくけこ）。さし", 10.0, 100.0);
        assert_eq!(lines, vec!["あいうえおかきくけ", "こ）。さし"]);
        // The same after a break at a space (found by the property test below).
        let text = "ab cd efgh ）、";
        let width = metrics().text_width("ab cd efgh", 10.0) + 0.5;
        let lines = wrap(metrics(), text, 10.0, width);
        assert_eq!(lines, vec!["ab cd efg", "h）、"]);
    }

    proptest! {
        #[test]
        fn wrapping_keeps_every_character_and_respects_width(
            text in "[あ-んア-ン漢字東京都焼津市。、「」（） a-zA-Z0-9.,:/-]{0,200}",
            width in 40.0f32..400.0,
        ) {
            let size = 10.0;
            let lines = wrap(metrics(), &text, size, width);
            prop_assert_eq!(without_spaces(&lines.concat()), without_spaces(&text));
            for (index, line) in lines.iter().enumerate() {
                // A line may overrun only by one mark hung past the margin, unless it has no
                // place to break at all (one character followed only by closing marks).
                let mut body = line.chars();
                if line.chars().last().is_some_and(|c| NO_LINE_START.contains(c)) {
                    body.next_back();
                }
                let unbreakable = line.chars().skip(1).all(|c| NO_LINE_START.contains(c));
                prop_assert!(
                    unbreakable || metrics().text_width(body.as_str(), size) <= width + 0.01,
                    "{:?}",
                    line
                );
                // Japanese closing punctuation never starts a continuation line.
                let starts_with_closing = line
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_ascii() && NO_LINE_START.contains(c));
                prop_assert!(index == 0 || !starts_with_closing, "{:?}", line);
            }
        }
    }
}
