//! Just enough of ZIP to read Alipay's bill archives: the central directory, stored and deflated entries, CRC
//! checked. Written over flate2 rather than taking the `zip` crate: `zip` 9 pulls in nix, getrandom 0.4,
//! indexmap, typed-path and more for features a bill never uses (writing, encryption, ZIP64, other methods),
//! while this is ~150 lines that hand back raw name bytes (Alipay's are GBK without the UTF-8 flag, which
//! `zip` would decode as CP437) and are fuzzed (fuzz target `bill_alipay`).

use super::{fail, read_capped, BillError};
use flate2::read::DeflateDecoder;

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
/// The end record's fixed size; a comment of up to 64 KiB may follow it.
const END_LEN: usize = 22;

pub(super) struct Entry {
    pub name: Vec<u8>,
    /// General purpose flags: bit 0 encrypted, bit 11 the name is UTF-8.
    pub flags: u16,
    method: u16,
    crc: u32,
    compressed: usize,
    size: usize,
    offset: usize,
}

impl Entry {
    pub fn utf8_name(&self) -> bool {
        self.flags & 0x0800 != 0
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn damaged(why: &str) -> BillError {
    fail(0, format!("the ZIP archive is damaged: {why}"))
}

/// The entries of the archive `data`, from its central directory.
pub(super) fn entries(data: &[u8]) -> Result<Vec<Entry>, BillError> {
    let earliest = data.len().saturating_sub(END_LEN + 0xFFFF);
    let end = (earliest..=data.len().saturating_sub(END_LEN))
        .rev()
        .find(|&at| u32_at(data, at) == Some(END))
        .ok_or_else(|| damaged("no end of central directory record (truncated?)"))?;
    let count = u16_at(data, end + 10).ok_or_else(|| damaged("short end record"))?;
    let cd_offset = u32_at(data, end + 16).ok_or_else(|| damaged("short end record"))?;
    if cd_offset == u32::MAX || count == u16::MAX {
        return Err(fail(0, "ZIP64 archives are not supported (a daily bill is far below 4 GiB)"));
    }
    let mut at = usize::try_from(cd_offset).map_err(|_| damaged("central directory offset"))?;
    // A directory entry takes at least 46 bytes: a forged count cannot reserve more than the archive holds.
    let mut out = Vec::with_capacity(usize::from(count).min(data.len() / 46));
    for _ in 0..count {
        let field16 = |off: usize| u16_at(data, at + off).ok_or_else(|| damaged("central directory cut short"));
        let field32 = |off: usize| u32_at(data, at + off).ok_or_else(|| damaged("central directory cut short"));
        if field32(0)? != CENTRAL {
            return Err(damaged("a central directory entry has a bad signature"));
        }
        let size = |v: u32| usize::try_from(v).map_err(|_| damaged("entry size"));
        let (name_len, extra_len, comment_len) =
            (usize::from(field16(28)?), usize::from(field16(30)?), usize::from(field16(32)?));
        let name = data.get(at + 46..at + 46 + name_len).ok_or_else(|| damaged("an entry name is cut short"))?;
        out.push(Entry {
            name: name.to_vec(),
            flags: field16(8)?,
            method: field16(10)?,
            crc: field32(16)?,
            compressed: size(field32(20)?)?,
            size: size(field32(24)?)?,
            offset: size(field32(42)?)?,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// The content of `entry`, at most `limit` bytes once decompressed, its CRC checked.
pub(super) fn read(data: &[u8], entry: &Entry, limit: usize) -> Result<Vec<u8>, BillError> {
    if entry.flags & 1 != 0 {
        return Err(fail(0, "the ZIP entry is encrypted"));
    }
    if entry.size > limit {
        return Err(fail(0, format!("the ZIP entry would decompress to more than {limit} bytes")));
    }
    let at = entry.offset;
    if u32_at(data, at) != Some(LOCAL) {
        return Err(damaged("an entry's local header is missing"));
    }
    let name_len = usize::from(u16_at(data, at + 26).ok_or_else(|| damaged("local header cut short"))?);
    let extra_len = usize::from(u16_at(data, at + 28).ok_or_else(|| damaged("local header cut short"))?);
    let start = at.checked_add(30 + name_len + extra_len).ok_or_else(|| damaged("entry offset"))?;
    let raw = start
        .checked_add(entry.compressed)
        .and_then(|stop| data.get(start..stop))
        .ok_or_else(|| damaged("an entry's data is cut short"))?;
    let content = match entry.method {
        0 => raw.to_vec(),
        // The directory's size bounds the output: a lying entry cannot make it allocate more.
        8 => read_capped(DeflateDecoder::new(raw), entry.size, "ZIP entry's deflate")?,
        m => return Err(fail(0, format!("the ZIP entry uses compression method {m}; only stored and deflate are"))),
    };
    if content.len() != entry.size {
        return Err(damaged("an entry's size differs from the directory's"));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&content);
    if crc.sum() != entry.crc {
        return Err(damaged("an entry's CRC-32 does not match its content"));
    }
    Ok(content)
}
