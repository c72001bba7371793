//! `bills::parse_wechat_bill` on any bytes (what a WeChat bill download answers): never panics; what it accepts
//! has non-negative amounts, upper-case statuses and a summary, and reads the same gzipped (as v3 files and v2
//! `tar_type=GZIP` come) and with a BOM in front. Seeds: simulator-shaped bills (fuzz/corpus/bill_wechat/).
#![no_main]

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use paygate_channels::bills::{parse_wechat_bill, BillKind};
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let Ok(bill) = parse_wechat_bill(data) else {
        return;
    };
    assert!(bill.summary.is_some(), "a bill without its summary block was accepted");
    for row in &bill.rows {
        assert!(row.amount >= 0, "negative amount accepted: {row:?}");
        assert_eq!(row.status, row.status.to_ascii_uppercase());
        if row.kind == BillKind::Payment {
            assert!(row.refund_id.is_empty() && row.out_refund_no.is_empty(), "{row:?}");
        }
    }
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(data).expect("writing to a Vec");
    let gz = gz.finish().expect("writing to a Vec");
    assert_eq!(parse_wechat_bill(&gz).as_ref(), Ok(&bill), "the gzipped bill reads differently");
    if !data.starts_with("\u{feff}".as_bytes()) {
        let with_bom = [&b"\xef\xbb\xbf"[..], data].concat();
        assert_eq!(parse_wechat_bill(&with_bom).as_ref(), Ok(&bill), "a BOM changed the bill");
    }
});
