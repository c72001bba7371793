//! The two file formats of Alipay's bills written by hand: GBK text (only the characters the bill templates
//! use, from a table made with Python's `gbk` codec; any other non-ASCII character becomes `?`) and a ZIP
//! archive of stored (uncompressed) entries. No zip or encoding crate is in the workspace's Cargo.lock, and a
//! stored ZIP is all any unzip needs.

/// GBK bytes of each non-ASCII character in the bill templates, sorted by character.
const GBK: [(char, [u8; 2]); 99] = [
    ('业', [0xD2, 0xB5]),
    ('交', [0xBD, 0xBB]),
    ('付', [0xB8, 0xB6]),
    ('优', [0xD3, 0xC5]),
    ('余', [0xD3, 0xE0]),
    ('作', [0xD7, 0xF7]),
    ('元', [0xD4, 0xAA]),
    ('入', [0xC8, 0xEB]),
    ('出', [0xB3, 0xF6]),
    ('分', [0xB7, 0xD6]),
    ('列', [0xC1, 0xD0]),
    ('创', [0xB4, 0xB4]),
    ('券', [0xC8, 0xAF]),
    ('务', [0xCE, 0xF1]),
    ('包', [0xB0, 0xFC]),
    ('单', [0xB5, 0xA5]),
    ('卡', [0xBF, 0xA8]),
    ('号', [0xBA, 0xC5]),
    ('合', [0xBA, 0xCF]),
    ('名', [0xC3, 0xFB]),
    ('员', [0xD4, 0xB1]),
    ('品', [0xC6, 0xB7]),
    ('商', [0xC9, 0xCC]),
    ('在', [0xD4, 0xDA]),
    ('型', [0xD0, 0xCD]),
    ('备', [0xB1, 0xB8]),
    ('始', [0xCA, 0xBC]),
    ('完', [0xCD, 0xEA]),
    ('宝', [0xB1, 0xA6]),
    ('实', [0xCA, 0xB5]),
    ('家', [0xBC, 0xD2]),
    ('对', [0xB6, 0xD4]),
    ('导', [0xB5, 0xBC]),
    ('年', [0xC4, 0xEA]),
    ('店', [0xB5, 0xEA]),
    ('建', [0xBD, 0xA8]),
    ('总', [0xD7, 0xDC]),
    ('惠', [0xBB, 0xDD]),
    ('成', [0xB3, 0xC9]),
    ('户', [0xBB, 0xA7]),
    ('批', [0xC5, 0xFA]),
    ('操', [0xB2, 0xD9]),
    ('支', [0xD6, 0xA7]),
    ('收', [0xCA, 0xD5]),
    ('数', [0xCA, 0xFD]),
    ('方', [0xB7, 0xBD]),
    ('日', [0xC8, 0xD5]),
    ('时', [0xCA, 0xB1]),
    ('明', [0xC3, 0xF7]),
    ('易', [0xD2, 0xD7]),
    ('月', [0xD4, 0xC2]),
    ('服', [0xB7, 0xFE]),
    ('期', [0xC6, 0xDA]),
    ('束', [0xCA, 0xF8]),
    ('查', [0xB2, 0xE9]),
    ('核', [0xBA, 0xCB]),
    ('次', [0xB4, 0xCE]),
    ('款', [0xBF, 0xEE]),
    ('止', [0xD6, 0xB9]),
    ('水', [0xCB, 0xAE]),
    ('求', [0xC7, 0xF3]),
    ('汇', [0xBB, 0xE3]),
    ('注', [0xD7, 0xA2]),
    ('流', [0xC1, 0xF7]),
    ('测', [0xB2, 0xE2]),
    ('消', [0xCF, 0xFB]),
    ('润', [0xC8, 0xF3]),
    ('渠', [0xC7, 0xFE]),
    ('称', [0xB3, 0xC6]),
    ('端', [0xB6, 0xCB]),
    ('笔', [0xB1, 0xCA]),
    ('类', [0xC0, 0xE0]),
    ('红', [0xBA, 0xEC]),
    ('线', [0xCF, 0xDF]),
    ('细', [0xCF, 0xB8]),
    ('终', [0xD6, 0xD5]),
    ('结', [0xBD, 0xE1]),
    ('编', [0xB1, 0xE0]),
    ('表', [0xB1, 0xED]),
    ('计', [0xBC, 0xC6]),
    ('订', [0xB6, 0xA9]),
    ('试', [0xCA, 0xD4]),
    ('询', [0xD1, 0xAF]),
    ('请', [0xC7, 0xEB]),
    ('账', [0xD5, 0xCB]),
    ('费', [0xB7, 0xD1]),
    ('起', [0xC6, 0xF0]),
    ('退', [0xCD, 0xCB]),
    ('道', [0xB5, 0xC0]),
    ('金', [0xBD, 0xF0]),
    ('销', [0xCF, 0xFA]),
    ('门', [0xC3, 0xC5]),
    ('间', [0xBC, 0xE4]),
    ('集', [0xBC, 0xAF]),
    ('额', [0xB6, 0xEE]),
    ('（', [0xA3, 0xA8]),
    ('）', [0xA3, 0xA9]),
    ('，', [0xA3, 0xAC]),
    ('：', [0xA3, 0xBA]),
];

/// `text` in GBK: ASCII as is, table characters as their two bytes, anything else `?`.
pub fn gbk(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            match GBK.binary_search_by(|(k, _)| k.cmp(&c)) {
                Ok(i) => out.extend_from_slice(&GBK[i].1),
                Err(_) => out.push(b'?'),
            }
        }
    }
    out
}

/// CRC-32 (IEEE, reflected, as ZIP uses): the table version, since a 100 000-row bill is tens of MiB.
pub fn crc32(data: &[u8]) -> u32 {
    crate::recon::crc32(data)
}

/// A ZIP archive of `files` (name bytes, content) stored without compression. Names are raw bytes (GBK, as
/// Alipay's are), so the UTF-8 flag is not set. DOS time 1980-01-01 00:00.
pub fn stored_zip(files: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let (crc, size, name_len) = (crc32(data), data.len() as u32, name.len() as u16);
        // Local file header: signature, version 1.0, flags, method 0 (stored), time, date, crc, sizes, name.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&10u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0x0021u16.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(data);
        // Central directory entry: the same facts plus where the local header is.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&10u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x0021u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0u8; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let (cd_offset, cd_size, count) = (out.len() as u32, central.len() as u32, files.len() as u16);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_and_crc_match_known_values() {
        // Python: "支付宝交易号".encode("gbk"); zlib.crc32(b"123456789") == 0xCBF43926.
        assert_eq!(gbk("支付宝交易号,a"), b"\xd6\xa7\xb8\xb6\xb1\xa6\xbd\xbb\xd2\xd7\xba\xc5,a");
        assert_eq!(gbk("€"), b"?");
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert!(GBK.windows(2).all(|w| w[0].0 < w[1].0), "sorted for binary search");
    }
}
