//! JSON paths (`SubExperiments[1].IATType`) and a small locator that finds where a path's value
//! starts in the source text.
//!
//! Why: every configuration error names the JSON path of the offending value, and, when the
//! text is at hand, its line and column. Parse errors get their position from serde_json;
//! validation happens after parsing, on typed values that no longer know where they came from,
//! so [`locate`] walks the (already valid) text again to find the value.

use std::fmt;

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// An object member, e.g. `IATType`.
    Key(String),
    /// An array element, e.g. `[2]`.
    Index(usize),
}

/// A path from the document root to a value, displayed as `SubExperiments[2].BurstSizes[1]`.
/// The root itself displays as the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JsonPath(Vec<Segment>);

impl JsonPath {
    /// The document root.
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path extended by an object key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// Converts the path that `serde_path_to_error` tracked while deserializing. Trailing
    /// segments it could not name (e.g. after a trailing comma) are dropped.
    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let mut segments: Vec<Segment> = path
            .iter()
            .map(|segment| match segment {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } => Some(Segment::Key(key.clone())),
                S::Enum { variant } => Some(Segment::Key(variant.clone())),
                S::Unknown => None,
            })
            .map(|segment| segment.unwrap_or_else(|| Segment::Key("?".to_owned())))
            .collect();
        while segments.last() == Some(&Segment::Key("?".to_owned())) {
            segments.pop();
        }
        Self(segments)
    }

    /// The last segment, if it is an object key.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// This path without its last segment (the root stays the root).
    pub(crate) fn parent(&self) -> Self {
        let mut segments = self.0.clone();
        segments.pop();
        Self(segments)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Returns the 1-based `(line, column)` where the value at `path` starts in `text`, or `None`
/// when the path does not exist there (or the text is not the JSON it is expected to be).
///
/// Columns count characters, not bytes. Never panics, whatever the input.
pub(crate) fn locate(text: &str, path: &JsonPath) -> Option<(usize, usize)> {
    let mut cursor = Cursor::new(text);
    for segment in &path.0 {
        cursor.skip_ws();
        match segment {
            Segment::Key(wanted) => cursor.enter_member(wanted)?,
            Segment::Index(wanted) => cursor.enter_element(*wanted)?,
        }
    }
    cursor.skip_ws();
    Some(line_column(text, cursor.pos))
}

/// Converts a byte offset into a 1-based line and (character) column.
pub(crate) fn line_column(text: &str, byte_offset: usize) -> (usize, usize) {
    let mut offset = byte_offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A read position in JSON text. All methods return `None` instead of panicking on input that
/// does not have the expected shape. Shared with the duplicate-key scanner.
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(crate) fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(crate) fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Skips a string starting at the opening quote; returns its raw (still escaped) content.
    fn string(&mut self) -> Option<&[u8]> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            match self.peek()? {
                b'"' => {
                    let content = self.bytes.get(start..self.pos)?;
                    self.pos += 1;
                    return Some(content);
                }
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
    }

    /// Skips one complete value (iteratively, so deep nesting cannot overflow the stack).
    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                        }
                        b'{' | b'[' => {
                            depth += 1;
                            self.pos += 1;
                        }
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            self.pos += 1;
                            if depth == 0 {
                                return Some(());
                            }
                        }
                        _ => self.pos += 1,
                    }
                }
            }
            _ => {
                // Number or literal: runs until a delimiter.
                let start = self.pos;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }

    /// Positions the cursor at the value of member `wanted` of the object starting here.
    fn enter_member(&mut self, wanted: &str) -> Option<()> {
        self.expect(b'{')?;
        loop {
            self.skip_ws();
            if self.peek()? == b'}' {
                return None;
            }
            let key = self.string()?;
            let found = key == wanted.as_bytes();
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            if found {
                return Some(());
            }
            self.skip_value()?;
            self.skip_ws();
            if self.peek()? == b',' {
                self.pos += 1;
            }
        }
    }

    /// Positions the cursor at element `wanted` of the array starting here.
    fn enter_element(&mut self, wanted: usize) -> Option<()> {
        self.expect(b'[')?;
        for _ in 0..wanted {
            self.skip_ws();
            if self.peek()? == b']' {
                return None;
            }
            self.skip_value()?;
            self.skip_ws();
            self.expect(b',')?;
        }
        self.skip_ws();
        (self.peek()? != b']').then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DOC: &str = "{\n  \"A\": [1, {\"B\": \"x\\\"}\"}, [2, 3]],\n  \"C\": {\"D\": 4}\n}";

    #[test]
    fn display_joins_keys_with_dots_and_brackets_indices() {
        let path = JsonPath::root()
            .key("SubExperiments")
            .index(2)
            .key("BurstSizes")
            .index(1);
        assert_eq!(path.to_string(), "SubExperiments[2].BurstSizes[1]");
        assert_eq!(JsonPath::root().to_string(), "");
    }

    #[test]
    fn locates_members_and_elements() {
        assert_eq!(locate(DOC, &JsonPath::root()), Some((1, 1)));
        assert_eq!(locate(DOC, &JsonPath::root().key("A")), Some((2, 8)));
        assert_eq!(
            locate(DOC, &JsonPath::root().key("A").index(0)),
            Some((2, 9))
        );
        assert_eq!(
            locate(DOC, &JsonPath::root().key("A").index(1).key("B")),
            Some((2, 18))
        );
        assert_eq!(
            locate(DOC, &JsonPath::root().key("A").index(2).index(1)),
            Some((2, 31))
        );
        assert_eq!(
            locate(DOC, &JsonPath::root().key("C").key("D")),
            Some((3, 14))
        );
    }

    #[test]
    fn missing_paths_are_none() {
        assert_eq!(locate(DOC, &JsonPath::root().key("Z")), None);
        assert_eq!(locate(DOC, &JsonPath::root().key("A").index(3)), None);
        assert_eq!(locate(DOC, &JsonPath::root().key("C").index(0)), None);
        assert_eq!(locate("", &JsonPath::root().key("C")), None);
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_column("µµx", "µµ".len()), (1, 3));
        assert_eq!(line_column("a\nb", 99), (2, 2));
    }

    proptest! {
        #[test]
        fn locate_never_panics(text in ".{0,64}", keys in proptest::collection::vec("[A-Z]{1,2}", 0..3), index in 0usize..3) {
            let mut path = JsonPath::root();
            for key in &keys {
                path = path.key(key).index(index);
            }
            let _ = locate(&text, &path);
        }
    }
}
