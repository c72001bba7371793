//! `bills::parse_alipay_bill` on any bytes (what an Alipay bill download URL serves): never panics; what it
//! accepts has non-negative amounts, "SUCCESS" rows without a channel refund id, and a bare CSV it accepts reads
//! the same stored in a ZIP under a GBK `…_业务明细.csv` name, as Alipay ships it. Seeds: simulator-shaped
//! stored ZIPs and a bare CSV (fuzz/corpus/bill_alipay/).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::bills::{parse_alipay_bill, BillKind};

/// `…_业务明细.csv` in GBK.
const NAME: &[u8] = b"20880000000000000156_20261130_\xd2\xb5\xce\xf1\xc3\xf7\xcf\xb8.csv";

/// A ZIP of one stored entry, as the simulator writes it.
fn stored_zip(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let (crc, size) = (crc.sum(), u32::try_from(data.len()).expect("fuzz inputs are small"));
    let name_len = u16::try_from(name.len()).expect("a short name");
    let fixed = |v: &mut Vec<u8>| {
        for half in [0u16, 0, 0, 0x21] {
            v.extend_from_slice(&half.to_le_bytes());
        }
        v.extend_from_slice(&crc.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&name_len.to_le_bytes());
    };
    let mut out = 0x0403_4b50u32.to_le_bytes().to_vec();
    out.extend_from_slice(&10u16.to_le_bytes());
    fixed(&mut out);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    let cd_offset = u32::try_from(out.len()).expect("small");
    let mut central = 0x0201_4b50u32.to_le_bytes().to_vec();
    central.extend_from_slice(&[20, 0, 10, 0]);
    fixed(&mut central);
    central.extend_from_slice(&[0u8; 16]);
    central.extend_from_slice(name);
    let cd_size = u32::try_from(central.len()).expect("small");
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(bill) = parse_alipay_bill(data) else {
        return;
    };
    for row in &bill.rows {
        assert!(row.amount >= 0, "negative amount accepted: {row:?}");
        assert_eq!(row.status, "SUCCESS");
        assert!(row.refund_id.is_empty(), "{row:?}");
        if row.kind == BillKind::Payment {
            assert!(row.out_refund_no.is_empty(), "{row:?}");
        }
    }
    if !data.starts_with(b"PK") {
        let zipped = stored_zip(NAME, data);
        assert_eq!(parse_alipay_bill(&zipped).as_ref(), Ok(&bill), "the zipped CSV reads differently");
    }
});
