//! WeChat Pay API v2: XML bodies of string fields, signed with MD5 or HMAC-SHA256.
//!
//! Fields stay an ordered list of (name, value) pairs as they arrived: unknown fields take part in the signature,
//! and nothing is lost or reordered when a message is read and written back. The refund notification's
//! `req_info` is AES-256-ECB under the MD5 of the API key.

use super::{hex_upper, WechatError};
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use quick_xml::events::Event;
use quick_xml::Reader;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The largest XML body we read. WeChat's messages are a few KiB; anything near this is not WeChat.
pub const MAX_XML_BYTES: usize = 256 * 1024;
/// The most fields one message may carry (coupons and refunds are indexed, but never this many).
pub const MAX_FIELDS: usize = 1024;

/// The exact reply that stops WeChat's notification retries.
pub const SUCCESS_REPLY: &str =
    "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// Which hash `sign` is made with: the `sign_type` field decides (absent means MD5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignType {
    Md5,
    HmacSha256,
}

impl SignType {
    /// `MD5` or `HMAC-SHA256`, as the `sign_type` field spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// The sign type a `sign_type` field value names; absent or empty is MD5.
    pub fn parse(value: Option<&str>) -> Result<SignType, WechatError> {
        match value.unwrap_or("") {
            "" | "MD5" => Ok(SignType::Md5),
            "HMAC-SHA256" => Ok(SignType::HmacSha256),
            other => Err(WechatError::Malformed(format!("sign_type '{other}' is neither MD5 nor HMAC-SHA256"))),
        }
    }

    /// The sign type of a message, from its `sign_type` field.
    pub fn of(fields: &Fields) -> Result<SignType, WechatError> {
        SignType::parse(fields.get("sign_type"))
    }
}

/// A v2 message: string fields in the order they arrived (or were added).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn new() -> Fields {
        Fields(Vec::new())
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name` when present and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value of `name`, or an error naming the missing field.
    pub fn require(&self, name: &str) -> Result<&str, WechatError> {
        self.non_empty(name).ok_or_else(|| WechatError::Malformed(format!("{name} is missing")))
    }

    /// Sets `name` (replacing its value in place, or appending it).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Fields {
        let (name, value) = (name.into(), value.into());
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
        self
    }

    /// Sets `name` unless `value` is empty (WeChat leaves empty fields out).
    pub fn set_opt(&mut self, name: &str, value: Option<&str>) -> &mut Fields {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.set(name, v);
        }
        self
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(at).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Fields {
        let mut fields = Fields::new();
        for (k, v) in iter {
            fields.set(k, v);
        }
        fields
    }
}

/// The signed string: every non-empty field but `sign`, sorted by name (byte order), `k=v` joined by `&`, raw
/// values, then `&key=API_KEY`.
pub fn string_to_sign(fields: &Fields, api_key: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = fields.iter().filter(|(k, v)| *k != "sign" && !v.is_empty()).collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut plain = String::new();
    for (k, v) in pairs {
        plain.push_str(k);
        plain.push('=');
        plain.push_str(v);
        plain.push('&');
    }
    plain.push_str("key=");
    plain.push_str(api_key);
    plain
}

/// The `sign` of `fields` with `sign_type`, uppercase hex. HMAC-SHA256 is keyed with the API key.
pub fn sign(fields: &Fields, api_key: &str, sign_type: SignType) -> String {
    let plain = string_to_sign(fields, api_key);
    match sign_type {
        SignType::Md5 => hex_upper(&Md5::digest(plain.as_bytes())),
        SignType::HmacSha256 => {
            // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
            let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(api_key.as_bytes()) {
                Ok(mac) => mac,
                Err(_) => return String::new(),
            };
            mac.update(plain.as_bytes());
            hex_upper(&mac.finalize().into_bytes())
        }
    }
}

/// Sets `sign` on `fields` with the sign type its `sign_type` field names.
pub fn sign_in_place(fields: &mut Fields, api_key: &str) -> Result<(), WechatError> {
    let sign_type = SignType::of(fields)?;
    let signature = sign(fields, api_key, sign_type);
    fields.set("sign", signature);
    Ok(())
}

/// Checks `sign` with the sign type the message's own `sign_type` names (MD5 when absent).
pub fn verify(fields: &Fields, api_key: &str) -> Result<(), WechatError> {
    verify_with(fields, api_key, SignType::of(fields)?)
}

/// Checks `sign` with a sign type the caller knows (a response is signed as its request was), in constant time.
pub fn verify_with(fields: &Fields, api_key: &str, sign_type: SignType) -> Result<(), WechatError> {
    let given = fields.require("sign")?.to_ascii_uppercase();
    let expected = sign(fields, api_key, sign_type);
    if given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(WechatError::BadSignature(format!("sign does not verify ({})", sign_type.as_str())))
    }
}

/// Reads a v2 `<xml>` body into its fields. Refused: a DOCTYPE (and so any entity definition), entity references
/// other than XML's five, processing instructions, nested elements, repeated fields, text outside fields, a root
/// other than `<xml>`, and bodies over [`MAX_XML_BYTES`] or [`MAX_FIELDS`].
pub fn parse_xml(text: &str) -> Result<Fields, WechatError> {
    let bad = |what: String| WechatError::Malformed(format!("XML body: {what}"));
    if text.len() > MAX_XML_BYTES {
        return Err(bad(format!("longer than {MAX_XML_BYTES} bytes")));
    }
    let mut reader = Reader::from_str(text);
    let mut fields = Fields::new();
    // 0: before the root, 1: in <xml>, 2: in a field, 3: after </xml>.
    let mut depth = 0u8;
    let mut name = String::new();
    let mut value = String::new();
    loop {
        let event = reader.read_event().map_err(|e| bad(format!("not well-formed ({e})")))?;
        match event {
            Event::Decl(_) | Event::Comment(_) => {}
            Event::DocType(_) => return Err(bad("DOCTYPE is not allowed".into())),
            Event::PI(_) => return Err(bad("processing instructions are not allowed".into())),
            Event::Start(start) => {
                let tag =
                    std::str::from_utf8(start.name().as_ref()).map_err(|_| bad("tag is not UTF-8".into()))?.to_string();
                match depth {
                    0 if tag == "xml" => depth = 1,
                    0 => return Err(bad(format!("root element is <{tag}>, not <xml>"))),
                    1 => {
                        check_name(&tag).map_err(bad)?;
                        name = tag;
                        value.clear();
                        depth = 2;
                    }
                    2 => return Err(bad(format!("field {name} has a nested element <{tag}>"))),
                    _ => return Err(bad("content after </xml>".into())),
                }
            }
            Event::Empty(start) => {
                let tag =
                    std::str::from_utf8(start.name().as_ref()).map_err(|_| bad("tag is not UTF-8".into()))?.to_string();
                match depth {
                    0 if tag == "xml" => depth = 3,
                    1 => {
                        check_name(&tag).map_err(bad)?;
                        push_field(&mut fields, tag, String::new()).map_err(bad)?;
                    }
                    2 => return Err(bad(format!("field {name} has a nested element <{tag}>"))),
                    _ => return Err(bad(format!("unexpected element <{tag}>"))),
                }
            }
            Event::End(_) => match depth {
                2 => {
                    push_field(&mut fields, std::mem::take(&mut name), std::mem::take(&mut value)).map_err(bad)?;
                    depth = 1;
                }
                1 => depth = 3,
                _ => return Err(bad("unbalanced end tag".into())),
            },
            Event::Text(t) => {
                let raw = t.unescape().map_err(|e| bad(format!("bad text ({e})")))?;
                if depth == 2 {
                    value.push_str(&raw);
                } else if !raw.trim().is_empty() {
                    return Err(bad("text outside a field".into()));
                }
            }
            Event::CData(c) => {
                if depth != 2 {
                    return Err(bad("CDATA outside a field".into()));
                }
                let raw = c.into_inner();
                value.push_str(std::str::from_utf8(&raw).map_err(|_| bad(format!("field {name} is not UTF-8")))?);
            }
            Event::Eof => break,
        }
    }
    if depth != 3 {
        return Err(bad("no complete <xml> element".into()));
    }
    Ok(fields)
}

fn check_name(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag.len() > 64 || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("field name '{}' is not [A-Za-z0-9_]{{1,64}}", tag.chars().take(64).collect::<String>()));
    }
    Ok(())
}

fn push_field(fields: &mut Fields, name: String, value: String) -> Result<(), String> {
    if fields.get(&name).is_some() {
        return Err(format!("field {name} appears twice"));
    }
    if fields.len() >= MAX_FIELDS {
        return Err(format!("more than {MAX_FIELDS} fields"));
    }
    fields.0.push((name, value));
    Ok(())
}

/// Writes fields as WeChat does: `<xml><name><![CDATA[value]]></name>…</xml>`, in order.
pub fn render_xml(fields: &Fields) -> String {
    let mut out = String::from("<xml>");
    for (k, v) in fields.iter() {
        out.push('<');
        out.push_str(k);
        out.push_str("><![CDATA[");
        // A value holding `]]>` would end the section early: split it across two sections.
        out.push_str(&v.replace("]]>", "]]]]><![CDATA[>"));
        out.push_str("]]></");
        out.push_str(k);
        out.push('>');
    }
    out.push_str("</xml>");
    out
}

/// The AES-256 key of `req_info`: the lowercase hex MD5 of the API key, as 32 ASCII bytes.
fn req_info_key(api_key: &str) -> [u8; 32] {
    let hex = hex_upper(&Md5::digest(api_key.as_bytes())).to_ascii_lowercase();
    let mut key = [0u8; 32];
    key.copy_from_slice(&hex.as_bytes()[..32]);
    key
}

/// Decrypts a refund notification's `req_info` (base64 → AES-256-ECB/PKCS7) into its XML text.
pub fn decrypt_req_info(req_info: &str, api_key: &str) -> Result<String, WechatError> {
    let data = STANDARD
        .decode(req_info.trim())
        .map_err(|e| WechatError::Malformed(format!("req_info is not base64 ({e})")))?;
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(WechatError::Malformed("req_info is not a whole number of AES blocks".into()));
    }
    let plain = ecb::Decryptor::<aes::Aes256>::new(&req_info_key(api_key).into())
        .decrypt_padded_vec_mut::<Pkcs7>(&data)
        .map_err(|_| WechatError::Decrypt("req_info does not decrypt with this API key".into()))?;
    String::from_utf8(plain).map_err(|_| WechatError::Decrypt("req_info decrypts to text that is not UTF-8".into()))
}

/// Encrypts `plain` (the refund's XML) as WeChat sends `req_info`.
pub fn encrypt_req_info(plain: &str, api_key: &str) -> String {
    let data = ecb::Encryptor::<aes::Aes256>::new(&req_info_key(api_key).into())
        .encrypt_padded_vec_mut::<Pkcs7>(plain.as_bytes());
    STANDARD.encode(data)
}

/// A 32-character nonce of `[0-9A-Za-z]` from the system's secure random source.
pub fn nonce_str() -> String {
    super::v3::random_token(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn example() -> Fields {
        [
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn documented_vectors() {
        assert_eq!(sign(&example(), KEY, SignType::Md5), "9A0A8659F005D6984697E2CA0A9CF3B7");
        assert_eq!(
            sign(&example(), KEY, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn sign_type_field_picks_the_hash_and_is_signed() {
        let mut fields = example();
        fields.set("sign_type", "HMAC-SHA256");
        sign_in_place(&mut fields, KEY).unwrap();
        assert_eq!(fields.get("sign").unwrap().len(), 64);
        verify(&fields, KEY).unwrap();
        // The sign type is part of what is signed: swapping it breaks the signature.
        fields.set("sign_type", "MD5");
        assert!(matches!(verify(&fields, KEY), Err(WechatError::BadSignature(_))));
        fields.set("sign_type", "SHA1");
        assert!(matches!(verify(&fields, KEY), Err(WechatError::Malformed(_))));
    }

    #[test]
    fn unknown_fields_take_part_and_empty_ones_do_not() {
        let mut fields = example();
        sign_in_place(&mut fields, KEY).unwrap();
        fields.set("empty", "");
        verify(&fields, KEY).unwrap();
        fields.set("zz_new", "1");
        assert!(verify(&fields, KEY).is_err());
        assert!(verify(&example(), KEY).is_err(), "a message without sign is refused");
        let mut lower = example();
        lower.set("sign", "9a0a8659f005d6984697e2ca0a9cf3b7");
        verify(&lower, KEY).unwrap();
        assert!(verify(&lower, "wrong").is_err());
    }

    #[test]
    fn xml_round_trip_keeps_order_cdata_and_text() {
        let xml =
            "<?xml version=\"1.0\"?>\n<xml>\n  <b><![CDATA[x]]>y</b>\n  <a>1 &amp; 2</a><empty/><c><![CDATA[]]></c>\
            <d><![CDATA[<tag> ]]]]><![CDATA[>]]></d></xml>";
        let fields = parse_xml(xml).unwrap();
        let pairs: Vec<_> = fields.iter().collect();
        assert_eq!(pairs, vec![("b", "xy"), ("a", "1 & 2"), ("empty", ""), ("c", ""), ("d", "<tag> ]]>")]);
        assert_eq!(parse_xml(&render_xml(&fields)).unwrap(), fields);
        assert_eq!(parse_xml(SUCCESS_REPLY).unwrap().get("return_msg"), Some("OK"));
    }

    #[test]
    fn hostile_xml_is_refused() {
        for bad in [
            "<!DOCTYPE xml [<!ENTITY e \"x\">]><xml><a>&e;</a></xml>",
            "<xml><a>&e;</a></xml>",
            "<xml><a><b>1</b></a></xml>",
            "<xml><a>1</a><a>2</a></xml>",
            "<root><a>1</a></root>",
            "<xml><a>1</a>",
            "<xml>text<a>1</a></xml>",
            "<xml><a>1</a></xml><xml/>",
            "<xml><a b='1'>1</b></xml>",
            "<xml><?php x?><a>1</a></xml>",
            "",
            "not xml",
        ] {
            assert!(parse_xml(bad).is_err(), "accepted {bad:?}");
        }
        let huge = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_XML_BYTES));
        assert!(parse_xml(&huge).unwrap_err().to_string().contains("longer"));
    }

    #[test]
    fn req_info_round_trip() {
        let plain = "<root><out_refund_no><![CDATA[r1]]></out_refund_no><refund_fee>1</refund_fee></root>";
        let sealed = encrypt_req_info(plain, KEY);
        assert_eq!(decrypt_req_info(&sealed, KEY).unwrap(), plain);
        assert_ne!(decrypt_req_info(&sealed, "another key").ok().as_deref(), Some(plain));
        assert!(decrypt_req_info("%%%", KEY).is_err());
        assert!(decrypt_req_info("AAAA", KEY).is_err());
    }
}
