//! Reading tar headers from the artifact, one entry at a time, without holding entry data:
//! the oci-archive is a plain (uncompressed) tar, ustar or GNU, as stellar's host writes it,
//! with PAX `path` and GNU long-name records understood for archives made by other tools.

use crate::PushError;
use crate::source::Cursor;

/// Tar block size.
const BLOCK: u64 = 512;
/// Longest name accepted from a PAX or GNU long-name record.
const MAX_LONG_NAME: u64 = 4096;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Directory,
    /// Links, devices, FIFOs: never part of an image layout, skipped.
    Other,
}

/// One tar entry; its data starts at `data_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The path, without a leading `./`.
    pub(crate) name: String,
    pub(crate) kind: EntryKind,
    pub(crate) size: u64,
    pub(crate) data_offset: u64,
}

impl Entry {
    /// Offset of the next header.
    pub(crate) fn end_offset(&self) -> u64 {
        self.data_offset + padded(self.size)
    }
}

/// `size` rounded up to whole blocks.
pub(crate) fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

/// Reads the header at the cursor (which must sit on a block boundary) and leaves the cursor
/// at the entry's data. `None` at the end-of-archive marker (a zero block) or at the end of
/// the source.
pub(crate) fn next_entry(cursor: &mut Cursor<'_>) -> Result<Option<Entry>, PushError> {
    let mut long_name: Option<String> = None;
    loop {
        if cursor.position() >= cursor.size() {
            return Ok(None);
        }
        let at = cursor.position();
        let block = cursor.read_exact(BLOCK)?;
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let header = parse_header(&block)
            .map_err(|what| cursor.bad(format!("tar header at byte {at}: {what}")))?;
        let data_offset = cursor.position();
        match header.type_flag {
            // PAX extended header: may carry `path`; applies to the next entry.
            b'x' | b'L' => {
                if header.size > MAX_LONG_NAME {
                    return Err(cursor.bad(format!(
                        "tar header at byte {at}: a {}-byte extended header (at most {MAX_LONG_NAME} accepted)",
                        header.size
                    )));
                }
                let data = cursor.read_exact(header.size)?;
                cursor.skip(padded(header.size) - header.size)?;
                let name = if header.type_flag == b'L' {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    Some(String::from_utf8_lossy(&data[..end]).into_owned())
                } else {
                    pax_path(&data)
                };
                if name.is_some() {
                    long_name = name;
                }
            }
            // Global PAX header: nothing stellar needs.
            b'g' => cursor.skip(padded(header.size))?,
            flag => {
                let kind = match flag {
                    b'0' | 0 | b'7' => EntryKind::File,
                    b'5' => EntryKind::Directory,
                    _ => EntryKind::Other,
                };
                let name = long_name.take().unwrap_or(header.name);
                let name = name.trim_start_matches("./").to_string();
                let size = if kind == EntryKind::File {
                    header.size
                } else {
                    0
                };
                let entry = Entry {
                    name,
                    kind,
                    size,
                    data_offset,
                };
                if entry.data_offset + header.size > cursor.size() {
                    return Err(cursor.bad(format!(
                        "tar entry `{}` at byte {at} declares {} bytes but the archive ends at byte {}",
                        entry.name,
                        header.size,
                        cursor.size()
                    )));
                }
                return Ok(Some(Entry {
                    size: header.size,
                    ..entry
                }));
            }
        }
    }
}

struct Header {
    name: String,
    size: u64,
    type_flag: u8,
}

/// Parses one 512-byte header block, checking its checksum.
fn parse_header(block: &[u8]) -> Result<Header, String> {
    let field = |range: std::ops::Range<usize>| block.get(range).unwrap_or_default();
    let stored = parse_octal(field(148..156))
        .ok_or("the checksum field is not an octal number; not a tar archive?")?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(format!(
            "checksum {stored} does not match the header's bytes ({sum}); not a tar archive?"
        ));
    }
    let size = parse_size(field(124..136)).ok_or("the size field is not a number")?;
    let cstr = |bytes: &[u8]| {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let mut name = cstr(field(0..100));
    // ustar prefix (POSIX `ustar\0` magic only: GNU uses those bytes for other things).
    if field(257..263) == b"ustar\0" {
        let prefix = cstr(field(345..500));
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    Ok(Header {
        name,
        size,
        type_flag: block.get(156).copied().unwrap_or(0),
    })
}

/// An octal field (NUL/space padded).
fn parse_octal(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The size field: octal, or GNU base-256 (high bit of the first byte set) for large sizes.
fn parse_size(bytes: &[u8]) -> Option<u64> {
    match bytes.first() {
        Some(&first) if first & 0x80 != 0 => {
            let mut value: u64 = u64::from(first & 0x7f);
            for &b in bytes.get(1..)? {
                value = value.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            Some(value)
        }
        _ => parse_octal(bytes),
    }
}

/// The `path` of PAX records (`<len> path=<value>\n`).
fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .filter_map(|line| line.split_once(' ').map(|(_, record)| record))
        .find_map(|record| record.strip_prefix("path=").map(str::to_string))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::source::MemorySource;

    /// A ustar header for `name` of `size` bytes with type `flag`.
    pub(crate) fn header(name: &str, size: u64, flag: u8) -> Vec<u8> {
        let mut h = vec![0_u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = flag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// A tar of `(name, bytes)` files.
    pub(crate) fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, bytes) in files {
            out.extend(header(name, bytes.len() as u64, b'0'));
            out.extend_from_slice(bytes);
            out.resize(padded(out.len() as u64) as usize, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    #[test]
    fn lists_entries_with_offsets() {
        let bytes = tar(&[("oci-layout", b"{}"), ("blobs/sha256/ab", &[7_u8; 700])]);
        let source = MemorySource::new(bytes.clone());
        let mut cursor = Cursor::new(&source);
        let first = next_entry(&mut cursor).unwrap().unwrap();
        assert_eq!(
            (first.name.as_str(), first.size, first.data_offset),
            ("oci-layout", 2, 512)
        );
        cursor.seek(first.end_offset()).unwrap();
        let second = next_entry(&mut cursor).unwrap().unwrap();
        assert_eq!(second.name, "blobs/sha256/ab");
        assert_eq!(second.size, 700);
        assert_eq!(second.data_offset, 1536);
        assert_eq!(bytes[1536], 7);
        cursor.seek(second.end_offset()).unwrap();
        assert_eq!(next_entry(&mut cursor).unwrap(), None);
    }

    #[test]
    fn pax_and_gnu_long_names_apply_to_the_next_entry() {
        let long = format!("blobs/sha256/{}", "a".repeat(120));
        let pax = format!("{} path={long}\n", 6 + long.len() + 6);
        let mut bytes = header("PaxHeader", pax.len() as u64, b'x');
        bytes.extend_from_slice(pax.as_bytes());
        bytes.resize(padded(bytes.len() as u64) as usize, 0);
        bytes.extend(header("short", 1, b'0'));
        bytes.push(9);
        bytes.resize(padded(bytes.len() as u64) as usize + 1024, 0);
        let source = MemorySource::new(bytes);
        let mut cursor = Cursor::new(&source);
        let entry = next_entry(&mut cursor).unwrap().unwrap();
        assert_eq!(entry.name, long);
        assert_eq!(entry.size, 1);
    }

    #[test]
    fn garbage_and_truncation_are_clear_errors() {
        let source = MemorySource::new(vec![b'P'; 2048]);
        let err = next_entry(&mut Cursor::new(&source))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("artifact `image.tar`: tar header at byte 0:")
                && err.contains("not a tar archive?"),
            "{err}"
        );

        let mut bytes = header("blobs/sha256/x", 5000, b'0');
        bytes.extend_from_slice(&[1; 100]);
        let source = MemorySource::new(bytes);
        let err = next_entry(&mut Cursor::new(&source))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("declares 5000 bytes but the archive ends at byte 612"),
            "{err}"
        );
    }

    #[test]
    fn base256_sizes_parse() {
        let mut field = [0_u8; 12];
        field[0] = 0x80;
        field[4..8].copy_from_slice(&2_u32.to_be_bytes());
        field[8..].copy_from_slice(&1_u32.to_be_bytes());
        assert_eq!(parse_size(&field), Some((2_u64 << 32) + 1));
        assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"zz"), None);
    }
}
