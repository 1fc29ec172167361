//! Repeated keys in an experiment file, read as STeLLAR reads them: the last value wins.
//!
//! Why this module exists: STeLLAR parses experiment files with Go's `encoding/json`, which
//! accepts a key that appears twice in one object and keeps the last value. Two of STeLLAR's
//! own published files rely on it (`experiments/coldboot-predictability/{aws,vhive}/
//! coldstart-cdfs.json` give one sub-experiment `"PackageType": "Zip"` and later
//! `"PackageType": "Image"`). serde's derived deserializers reject any repeated field, so such a
//! file would not load although it ran under STeLLAR.
//!
//! What it does: [`scan`] walks the text once (a small, strict JSON tokenizer with its own depth
//! limit) and records, for every object, each key that appears more than once, with the line of
//! every occurrence. When there is none (every well-formed stellar file) the text is handed to
//! serde untouched, so nothing changes. Otherwise [`Duplicates::keep`] produces a copy of the
//! text in which the members that lose are overwritten by spaces (newlines kept), so every byte
//! that remains is at the same line and column: serde's strict parse of that copy reports
//! unknown keys, wrong types and syntax errors at the positions of the original file. The
//! members that lose are still type-checked: [`Duplicates::variants`] gives one copy per
//! occurrence rank, each parsed strictly and then discarded (Go also fails on a wrong type in an
//! overwritten value). Every repeated key becomes a [`DuplicateKey`] warning in the plan.
//!
//! One difference with Go remains, documented rather than imitated: when both values of a
//! repeated key are objects (or arrays of objects), Go decodes the second into the first and so
//! merges their fields; here the last value replaces the first as a whole. No STeLLAR file
//! repeats such a key, and the warning shows exactly the value that is kept.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::json_path::{Cursor, JsonPath, line_column};

/// Nesting depth beyond which [`scan`] gives up (serde_json's own limit is 128, so such a text
/// is rejected by serde anyway, with serde's message).
const MAX_DEPTH: usize = 128;
/// Longest [`DuplicateKey::kept`] text, in characters, before it is cut with `…`.
const KEPT_MAX_CHARS: usize = 80;

/// A key that appears more than once in one object of the experiment file. The last value is
/// used, as STeLLAR (Go's `encoding/json`) does; recorded in `plan.json` and shown as a warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateKey {
    /// Where the key is, e.g. `SubExperiments[2].PackageType`.
    pub json_path: String,
    /// The key itself, e.g. `PackageType`.
    pub key: String,
    /// The 1-based line of every occurrence, in file order (at least two).
    pub lines: Vec<usize>,
    /// The value that is kept (the last one), as compact JSON, cut to 80 characters.
    pub kept: String,
}

impl DuplicateKey {
    /// The warning shown to the user, naming the file, e.g.
    ///
    /// ```text
    /// x.json: SubExperiments[2]: duplicate key `PackageType` (lines 37 and 44); the last value is kept, as STeLLAR (Go's encoding/json) does: "Image"
    /// ```
    pub fn warning(&self, file: &Path) -> String {
        let object = self
            .json_path
            .strip_suffix(&self.key)
            .map_or("", |rest| rest.strip_suffix('.').unwrap_or(rest));
        let mut out = format!("{}: ", file.display());
        if !object.is_empty() {
            out.push_str(object);
            out.push_str(": ");
        }
        out.push_str(&format!(
            "duplicate key `{}` ({}); the last value is kept, as STeLLAR (Go's encoding/json) does: {}",
            self.key,
            Lines(&self.lines),
            self.kept
        ));
        out
    }
}

/// `line 3`, `lines 3 and 9`, `lines 3, 5 and 9`.
struct Lines<'a>(&'a [usize]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => Ok(()),
            [one] => write!(f, "line {one}"),
            [init @ .., last] => {
                f.write_str("lines ")?;
                for (i, line) in init.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{line}")?;
                }
                write!(f, " and {last}")
            }
        }
    }
}

/// One member of an object: byte offsets into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    /// The key, decoded.
    key: String,
    /// The key's opening quote.
    key_start: usize,
    /// The first byte of the value.
    value_start: usize,
    /// One past the value's last byte.
    value_end: usize,
    /// The comma that follows the member, if any.
    comma: Option<usize>,
}

/// An object in which at least one key is repeated: all its members, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    path: JsonPath,
    members: Vec<Member>,
}

impl Object {
    /// For each member: which occurrence of its key it is (0-based) and how many there are.
    fn ranks(&self) -> Vec<(usize, usize)> {
        self.members
            .iter()
            .enumerate()
            .map(|(i, member)| {
                let same = |m: &&Member| m.key == member.key;
                let before = self.members[..i].iter().filter(same).count();
                (before, self.members.iter().filter(same).count())
            })
            .collect()
    }

    /// The repeated keys, each with its occurrences in file order.
    fn repeated(&self) -> Vec<Vec<&Member>> {
        let mut keys: Vec<Vec<&Member>> = Vec::new();
        for member in &self.members {
            match keys.iter_mut().find(|group| group[0].key == member.key) {
                Some(group) => group.push(member),
                None => keys.push(vec![member]),
            }
        }
        keys.retain(|group| group.len() > 1);
        keys
    }
}

/// The repeated keys of a text, as found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duplicates<'a> {
    text: &'a str,
    objects: Vec<Object>,
}

impl Duplicates<'_> {
    /// Whether the text has no repeated key (then it is used as it is).
    pub(crate) fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The text with, for every repeated key, only occurrence `min(rank, count - 1)` left; the
    /// others, and the commas that would dangle, are overwritten by spaces (newlines kept), so
    /// positions do not move. `usize::MAX` keeps the last occurrences: what STeLLAR reads.
    pub(crate) fn keep(&self, rank: usize) -> String {
        let mut bytes = self.text.as_bytes().to_vec();
        let mut blank = |start: usize, end: usize| {
            let span = bytes.get_mut(start..end).unwrap_or_default();
            for byte in span.iter_mut().filter(|b| **b != b'\n') {
                *byte = b' ';
            }
        };
        for object in &self.objects {
            let kept: Vec<bool> = object
                .ranks()
                .into_iter()
                .map(|(nth, count)| nth == rank.min(count - 1))
                .collect();
            let last_kept = kept.iter().rposition(|k| *k).unwrap_or(0);
            for (i, member) in object.members.iter().enumerate() {
                if !kept[i] {
                    blank(member.key_start, member.value_end);
                }
                if (!kept[i] || i >= last_kept)
                    && let Some(comma) = member.comma
                {
                    blank(comma, comma + 1);
                }
            }
        }
        // Blanked spans are whole members and commas: they start and end at ASCII bytes.
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }

    /// The texts that keep the earlier occurrences (rank 0, 1, ...), each to be parsed only to
    /// check that the values STeLLAR would overwrite are well-typed too.
    pub(crate) fn variants(&self) -> impl Iterator<Item = String> + '_ {
        let ranks = self
            .objects
            .iter()
            .flat_map(Object::ranks)
            .map(|(_, count)| count - 1)
            .max()
            .unwrap_or(0);
        (0..ranks).map(|rank| self.keep(rank))
    }

    /// The warnings, in file order, for the repeated keys that matter: a repetition inside a
    /// value that is itself overwritten is not reported.
    pub(crate) fn warnings(&self) -> Vec<DuplicateKey> {
        let groups: Vec<(&JsonPath, Vec<&Member>)> = self
            .objects
            .iter()
            .flat_map(|o| o.repeated().into_iter().map(move |g| (&o.path, g)))
            .collect();
        let discarded: Vec<(usize, usize)> = groups
            .iter()
            .flat_map(|(_, g)| g[..g.len() - 1].iter().map(|m| (m.key_start, m.value_end)))
            .collect();
        let mut reported: Vec<&(&JsonPath, Vec<&Member>)> = groups
            .iter()
            .filter(|(_, g)| {
                let at = g[0].key_start;
                !discarded.iter().any(|&(start, end)| start < at && at < end)
            })
            .collect();
        reported.sort_by_key(|(_, g)| g[0].key_start);
        reported
            .into_iter()
            .map(|(path, group)| {
                let last = group[group.len() - 1];
                DuplicateKey {
                    json_path: path.key(&last.key).to_string(),
                    key: last.key.clone(),
                    lines: group
                        .iter()
                        .map(|m| line_column(self.text, m.key_start).0)
                        .collect(),
                    kept: compact(
                        self.text
                            .get(last.value_start..last.value_end)
                            .unwrap_or_default(),
                    ),
                }
            })
            .collect()
    }
}

/// Finds the repeated keys of `text`. Text that is not a single well-formed JSON value (or is
/// nested deeper than serde accepts) yields no duplicates: serde then reports the problem on
/// the original text. Never panics.
pub(crate) fn scan(text: &str) -> Duplicates<'_> {
    let mut scanner = Scanner {
        text,
        cursor: Cursor::new(text),
        depth: 0,
        objects: Vec::new(),
    };
    let objects = match scanner.value(&JsonPath::root()) {
        Some(()) => scanner.objects,
        None => Vec::new(),
    };
    Duplicates { text, objects }
}

/// Compact JSON of a well-formed value's text (whitespace outside strings removed), cut to
/// [`KEPT_MAX_CHARS`] characters.
fn compact(value: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    for c in value.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii_whitespace() {
            continue;
        }
        out.push(c);
    }
    if out.chars().count() > KEPT_MAX_CHARS {
        out = out.chars().take(KEPT_MAX_CHARS - 1).collect();
        out.push('…');
    }
    out
}

/// A strict JSON reader that records repeated keys. Every method returns `None` on text that is
/// not well-formed JSON.
struct Scanner<'a> {
    text: &'a str,
    /// Position and the byte-level primitives (peek, whitespace, expect).
    cursor: Cursor<'a>,
    depth: usize,
    objects: Vec<Object>,
}

impl<'a> std::ops::Deref for Scanner<'a> {
    type Target = Cursor<'a>;
    fn deref(&self) -> &Cursor<'a> {
        &self.cursor
    }
}

impl std::ops::DerefMut for Scanner<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.cursor
    }
}

impl Scanner<'_> {
    fn value(&mut self, path: &JsonPath) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'{' => self.nested(|s| s.object(path)),
            b'[' => self.nested(|s| s.array(path)),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        inner(self)?;
        self.depth -= 1;
        Some(())
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.pos.checked_add(word.len())?;
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| self.pos = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        Some(())
    }

    fn digits(&mut self) -> Option<()> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        (self.pos > start).then_some(())
    }

    /// A string starting at its opening quote, decoded (escapes checked by serde_json).
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
        self.pos += 1;
        serde_json::from_str(self.text.get(start..self.pos)?).ok()
    }

    fn array(&mut self, path: &JsonPath) -> Option<()> {
        self.expect(b'[')?;
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        for index in 0.. {
            self.value(&path.index(index))?;
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => break,
                _ => return None,
            }
        }
        self.pos += 1;
        Some(())
    }

    fn object(&mut self, path: &JsonPath) -> Option<()> {
        self.expect(b'{')?;
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        let mut members: Vec<Member> = Vec::new();
        loop {
            self.skip_ws();
            let key_start = self.pos;
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let value_start = self.pos;
            self.value(&path.key(&key))?;
            let value_end = self.pos;
            self.skip_ws();
            let comma = match self.peek()? {
                b',' => Some(self.pos),
                b'}' => None,
                _ => return None,
            };
            self.pos += 1;
            members.push(Member {
                key,
                key_start,
                value_start,
                value_end,
                comma,
            });
            if comma.is_none() {
                break;
            }
        }
        let repeated = members
            .iter()
            .enumerate()
            .any(|(i, m)| members[..i].iter().any(|earlier| earlier.key == m.key));
        if repeated {
            self.objects.push(Object {
                path: path.clone(),
                members,
            });
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DOC: &str =
        "{\n  \"A\": 1,\n  \"B\": [{\"C\": true, \"C\": \"x y\"}],\n  \"A\": {\"D\":  [1, 2]}\n}";

    #[test]
    fn finds_repeated_keys_with_lines_and_the_kept_value() {
        let found = scan(DOC);
        assert_eq!(
            found.warnings(),
            [
                DuplicateKey {
                    json_path: "A".into(),
                    key: "A".into(),
                    lines: vec![2, 4],
                    kept: r#"{"D":[1,2]}"#.into(),
                },
                DuplicateKey {
                    json_path: "B[0].C".into(),
                    key: "C".into(),
                    lines: vec![3, 3],
                    kept: r#""x y""#.into(),
                },
            ]
        );
    }

    #[test]
    fn keeping_the_last_blanks_earlier_members_and_keeps_positions() {
        let found = scan(DOC);
        let last = found.keep(usize::MAX);
        assert_eq!(
            last,
            "{\n         \n  \"B\": [{           \"C\": \"x y\"}],\n  \"A\": {\"D\":  [1, 2]}\n}"
        );
        assert_eq!(last.len(), DOC.len());
        let value: serde_json::Value = serde_json::from_str(&last).expect("still JSON");
        assert_eq!(value["A"]["D"][1], 2);
        let variants: Vec<String> = found.variants().collect();
        assert_eq!(variants.len(), 1);
        assert_eq!(
            variants[0],
            "{\n  \"A\": 1,\n  \"B\": [{\"C\": true            }] \n                     \n}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(&variants[0]).is_ok());
    }

    #[test]
    fn three_occurrences_keep_each_in_turn() {
        let text = r#"{"K": 1, "K": 2, "K": 3}"#;
        let found = scan(text);
        let warnings = found.warnings();
        assert_eq!(warnings[0].lines, [1, 1, 1]);
        assert_eq!(warnings[0].kept, "3");
        let texts: Vec<serde_json::Value> = found
            .variants()
            .chain([found.keep(usize::MAX)])
            .map(|t| serde_json::from_str(&t).expect("JSON"))
            .collect();
        assert_eq!(
            texts,
            [
                serde_json::json!({"K": 1}),
                serde_json::json!({"K": 2}),
                serde_json::json!({"K": 3})
            ]
        );
    }

    #[test]
    fn repetitions_inside_an_overwritten_value_are_not_reported() {
        let found = scan(r#"{"S": {"T": 1, "T": 2}, "S": 3}"#);
        let paths: Vec<String> = found.warnings().into_iter().map(|w| w.json_path).collect();
        assert_eq!(paths, ["S"]);
    }

    #[test]
    fn escaped_keys_are_compared_decoded() {
        let found = scan(r#"{"A": 1, "\u0041": 2}"#);
        assert_eq!(found.warnings()[0].key, "A");
    }

    #[test]
    fn no_duplicates_in_well_formed_or_malformed_text() {
        for text in [
            r#"{"A": 1, "B": {"A": 2}, "C": [{"A": 3}, {"A": 4}]}"#,
            "",
            "{",
            r#"{"A": tru, "A": 1}"#,
            r#"{"A": 01, "A": 1}"#,
            r#"{"A": 1, "A": 2,}"#,
            r#"{"A": "\q", "A": 2}"#,
            "[1 2]",
        ] {
            assert!(scan(text).is_empty(), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(scan(&deep).is_empty());
    }

    #[test]
    fn long_kept_values_are_cut() {
        let long = format!(r#"{{"A": 1, "A": "{}"}}"#, "x".repeat(200));
        let kept = &scan(&long).warnings()[0].kept;
        assert_eq!(kept.chars().count(), KEPT_MAX_CHARS);
        assert!(kept.ends_with('…'));
    }

    #[test]
    fn warning_text() {
        let warning = DuplicateKey {
            json_path: "SubExperiments[2].PackageType".into(),
            key: "PackageType".into(),
            lines: vec![37, 44],
            kept: "\"Image\"".into(),
        };
        assert_eq!(
            warning.warning(Path::new("x.json")),
            "x.json: SubExperiments[2]: duplicate key `PackageType` (lines 37 and 44); the last value is kept, as STeLLAR (Go's encoding/json) does: \"Image\""
        );
        let root = DuplicateKey {
            json_path: "Provider".into(),
            key: "Provider".into(),
            lines: vec![1, 2, 3],
            kept: "\"aws\"".into(),
        };
        assert!(
            root.warning(Path::new("x.json"))
                .starts_with("x.json: duplicate key `Provider` (lines 1, 2 and 3);")
        );
    }

    proptest! {
        /// Arbitrary text: never panics, and whatever is kept is the same length and JSON again.
        #[test]
        fn never_panics_and_keeps_positions(text in "[{}\\[\\]\":,a-c0-9 \\n\\\\]{0,80}") {
            let found = scan(&text);
            let last = found.keep(usize::MAX);
            prop_assert_eq!(last.len(), text.len());
            prop_assert_eq!(last.matches('\n').count(), text.matches('\n').count());
            if !found.is_empty() {
                // The scanned value (what follows it, if anything, is serde's to report).
                let mut deserializer = serde_json::Deserializer::from_str(&last);
                prop_assert!(serde_json::Value::deserialize(&mut deserializer).is_ok());
            }
            let _ = found.warnings();
        }

        /// Objects with repeated keys: the kept text reads as the last value of each key.
        #[test]
        fn last_value_wins(pairs in proptest::collection::vec((0u8..3, any::<i32>()), 1..8)) {
            let members: Vec<String> = pairs.iter().map(|(k, v)| format!("\"k{k}\": {v}")).collect();
            let text = format!("{{{}}}", members.join(",\n"));
            let found = scan(&text);
            let value: serde_json::Value = serde_json::from_str(&found.keep(usize::MAX)).expect("JSON");
            let mut expected = serde_json::Map::new();
            for (k, v) in &pairs {
                expected.insert(format!("k{k}"), (*v).into());
            }
            prop_assert_eq!(value, serde_json::Value::Object(expected));
        }
    }
}
