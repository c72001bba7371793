//! v3 tests. The keys are test-only, made with openssl for these tests; the expected signature was made by
//! `openssl dgst -sha256 -sign` and the AEAD vector by Python `cryptography`, so both are independent of this code.

use super::*;

const MERCHANT_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDi5VjbLwcpl/Dz\n\
cy23sxRKlU73MnF0DgMULG1phCs1HM3rl7wTUJ4VdxVTN0pYusfoJWChHhKwmmnw\n\
qlPk8wPrGNWXy037EUaOhrBYK+mI6K9qYDoZcrR8FBSG8vBqkXvqKpWdeEG5bJa6\n\
bJ4BbyY5J9VWCaaU4OATBwDGzxdUmmQOSUK+l3t2mHft8+xxYmaM6smZPKZ0rB7s\n\
tcRdu3rkWnQEfiOKxlC0oKrR3ATPdIArnHzD65kxqp+GRCPCBIPgi9BDzxTtxT5O\n\
LAa/vUXRdeasdMJ+wVf6PLuZ5Q28eVcgCTsgNKZ+E258LXgCtD73f2VpHQ/uNsnd\n\
Wf5JEp57AgMBAAECggEAHYZamar086Sh5gwG1vCmo03qiKA3wzJPlEBzvFdGiBLH\n\
ePC1uI21BHYKgFmhgwpLGRpECLMxG2n8fySq5g/5Yo5IvQfnjdQhqko8iDyulvIw\n\
YVdEOCuE8OBsC2NxhWyJA1+nOGZ9pvNKadfYd7dO8gEM8bUvyA+7GL7Aix5Hmup9\n\
dl4AmC3GDk1M6imCq3CT6HMwc/VhkyzkWdz8ufSPQ5a+06SCNwOOSkAelbZb2nLr\n\
is4YWbJiE/dAUDzaLHaFs5g0mjFF3IUmQBuycYKeXzkPiqzNsec05mEnWHXvfVN6\n\
v74cBQCkOv0/RFdUPMd84S/5UfOoZR6QFdIFLDt/gQKBgQD6G4ESd6h+nv7nxuo4\n\
502swkeApIwzLPzalBUAI7dseuIpBrV+/iV5ZXLI0OGzIWgJ+tRaPxHsCad0PWcM\n\
fMZ0aP339XK/aJsjL99IzvOm+UNzVabnRBM+EOT9ivRwZitpoI2NjU+9pltNMlYE\n\
AZNvyBtWqc8nKUKCXliwRmlMFQKBgQDoPdhPT6DAcTH2O394UFjyrSBgRqU8v85C\n\
s9hIlMEEj7ao0X77I0TxyqoD7hkC4uskIKR/dplxaJKmfzj++dB8q/g5vCxNa9u7\n\
3HCwGIAjWiKjQcfXbPbnEneCsVzsfR6dq+KW6AHuQdI9GSIfWSbDZcJcf4PfYVK9\n\
/6mPYjiUTwKBgQCvAr3/0TFbYSCXyS4uoVROFih4kSv1x34r6UEEtvlr9FT7RlGM\n\
SoSofN+kO94jPbYSfa1IdSeyVlMR2MGaEFnCLZHBh8RCwg0Ew0PoK8B9T6DuPLos\n\
zAr2/FVwQWKooCWypQFIUuDAoX7z9swPw5aKuqi+rNZi3dFHboN63dpivQKBgQDG\n\
TOBhQDWbfEvT2xPJkJmShP8rFcdLat9clyGrP9Db6zZlSZRqLcBV0N2Aw5H5o/Zx\n\
f6nV6Fe2vTrTDbiGBprdiR1HdwRBC0KxUtWplxH6naEL00QnDrR3s432OymECIXW\n\
zYiJoArd/LfeUZKQP9hYaZAe2Qap+vjioOWQN6bmAwKBgGsi7MWzzFgHHlOAuYqM\n\
N0gLoiCDp8NFphV2TPyLnnTwhaV3K3VvG+DSF+keqc9GnywNiw3bDKhemoxMJBSV\n\
DcICGdaxaFE3olRlSBxpqSQU3Mdm62Shp8V+9pdJOtFYw2n92APsga8siLdxmwOk\n\
eXAQ7Mdeq2LqngCwX4bunn4a\n\
-----END PRIVATE KEY-----\n\
";
const MERCHANT_KEY_PKCS1: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEpAIBAAKCAQEA4uVY2y8HKZfw83Mtt7MUSpVO9zJxdA4DFCxtaYQrNRzN65e8\n\
E1CeFXcVUzdKWLrH6CVgoR4SsJpp8KpT5PMD6xjVl8tN+xFGjoawWCvpiOivamA6\n\
GXK0fBQUhvLwapF76iqVnXhBuWyWumyeAW8mOSfVVgmmlODgEwcAxs8XVJpkDklC\n\
vpd7dph37fPscWJmjOrJmTymdKwe7LXEXbt65Fp0BH4jisZQtKCq0dwEz3SAK5x8\n\
w+uZMaqfhkQjwgSD4IvQQ88U7cU+TiwGv71F0XXmrHTCfsFX+jy7meUNvHlXIAk7\n\
IDSmfhNufC14ArQ+939laR0P7jbJ3Vn+SRKeewIDAQABAoIBAB2GWpmq9POkoeYM\n\
BtbwpqNN6oigN8MyT5RAc7xXRogSx3jwtbiNtQR2CoBZoYMKSxkaRAizMRtp/H8k\n\
quYP+WKOSL0H543UIapKPIg8rpbyMGFXRDgrhPDgbAtjcYVsiQNfpzhmfabzSmnX\n\
2He3TvIBDPG1L8gPuxi+wIseR5rqfXZeAJgtxg5NTOopgqtwk+hzMHP1YZMs5Fnc\n\
/Ln0j0OWvtOkgjcDjkpAHpW2W9py64rOGFmyYhP3QFA82ix2hbOYNJoxRdyFJkAb\n\
snGCnl85D4qszbHnNOZhJ1h1731Ter++HAUApDr9P0RXVDzHfOEv+VHzqGUekBXS\n\
BSw7f4ECgYEA+huBEneofp7+58bqOOdNrMJHgKSMMyz82pQVACO3bHriKQa1fv4l\n\
eWVyyNDhsyFoCfrUWj8R7AmndD1nDHzGdGj99/Vyv2ibIy/fSM7zpvlDc1Wm50QT\n\
PhDk/Yr0cGYraaCNjY1PvaZbTTJWBAGTb8gbVqnPJylCgl5YsEZpTBUCgYEA6D3Y\n\
T0+gwHEx9jt/eFBY8q0gYEalPL/OQrPYSJTBBI+2qNF++yNE8cqqA+4ZAuLrJCCk\n\
f3aZcWiSpn84/vnQfKv4ObwsTWvbu9xwsBiAI1oio0HH12z25xJ3grFc7H0enavi\n\
lugB7kHSPRkiH1kmw2XCXH+D32FSvf+pj2I4lE8CgYEArwK9/9ExW2Egl8kuLqFU\n\
ThYoeJEr9cd+K+lBBLb5a/RU+0ZRjEqEqHzfpDveIz22En2tSHUnslZTEdjBmhBZ\n\
wi2RwYfEQsINBMND6CvAfU+g7jy6LMwK9vxVcEFiqKAlsqUBSFLgwKF+8/bMD8OW\n\
irqovqzWYt3RR26Det3aYr0CgYEAxkzgYUA1m3xL09sTyZCZkoT/KxXHS2rfXJch\n\
qz/Q2+s2ZUmUai3AVdDdgMOR+aP2cX+p1ehXtr060w24hgaa3YkdR3cEQQtCsVLV\n\
qZcR+p2hC9NEJw60d7ON9jsphAiF1s2IiaAK3fy33lGSkD/YWGmQHtkGqfr44qDl\n\
kDem5gMCgYBrIuzFs8xYBx5TgLmKjDdIC6Igg6fDRaYVdkz8i5508IWldyt1bxvg\n\
0hfpHqnPRp8sDYsN2wyoXpqMTCQUlQ3CAhnWsWhRN6JUZUgcaakkFNzHZutkoafF\n\
fvaXSTrRWMNp/dgD7IGvLIi3cZsDpHlwEOzHXqti6p4AsF+G7p5+Gg==\n\
-----END RSA PRIVATE KEY-----\n\
";
const MERCHANT_PUB: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4uVY2y8HKZfw83Mtt7MU\n\
SpVO9zJxdA4DFCxtaYQrNRzN65e8E1CeFXcVUzdKWLrH6CVgoR4SsJpp8KpT5PMD\n\
6xjVl8tN+xFGjoawWCvpiOivamA6GXK0fBQUhvLwapF76iqVnXhBuWyWumyeAW8m\n\
OSfVVgmmlODgEwcAxs8XVJpkDklCvpd7dph37fPscWJmjOrJmTymdKwe7LXEXbt6\n\
5Fp0BH4jisZQtKCq0dwEz3SAK5x8w+uZMaqfhkQjwgSD4IvQQ88U7cU+TiwGv71F\n\
0XXmrHTCfsFX+jy7meUNvHlXIAk7IDSmfhNufC14ArQ+939laR0P7jbJ3Vn+SRKe\n\
ewIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
const OTHER_PUB: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4gtbM63n99KhDH72Txp+\n\
ID6+TEDT+xvhxCZYREIQvtExiHmCjrljmbEucfKX17SVitqQtxLfyzXcnjrbFaUQ\n\
C4BHjaLORktm69v4BNuoYSIdaQkBiHKzydiOSZ7iOJW4IaiLu0R/bG2zWuE79Lu4\n\
bl+PDupwSI630xzHuOo2CFbfJrn0YbOutnUFzmiAumfXYWH+3CQQ9IexejvmCw5J\n\
O9qkqyaecNn/hrLcinYXO512nCxguZ4BogVJ5CLF32ezFcOfRTF55SLDWlVVqqiQ\n\
GTviQJKA74YiI0D9hve+Zd1horT5SUexWoamg1vlS32omUz/ASoFhY/DTrUHWLR0\n\
JQIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
const OPENSSL_SIGNATURE: &str = concat!(
    "mRseRSpYP2T5ay6O/AEu8Gjb9z4v7eicsxeoIL5q2XldIMOBZIpgWgrifJ2ModsFVmxEXM+K6/+GWkgMYRkxi8la8XWg30d+hNIF",
    "0Ek+xhGbLmrk2OfCyWlE1FHBOhTUaQSNmpeear/TyiKEuhxLjwgutbMyDVhrHGOvEsGB2J7w9aVpJsLc6vVnzWJBv2NSQ0HUayKL",
    "NEAK464VwVXcAz0hmwtabv/kygS8KNJ+67rBSEZQwaVdsRkVJE+4PkLEFAfpibglTrleYtSSYOV8O55cMSXgBdpRVsb43F4tBGIV",
    "oAijMwuAHVtBYCutnm0zGMnoO4u3mptRRO+OC9Iq1g==",
);

fn post() -> RequestParts<'static> {
    RequestParts { method: "POST", path_and_query: "/v3/pay/transactions/native", body: "{\"a\":1}" }
}

#[test]
fn signature_matches_openssl() {
    let message = request_message("POST", "/v3/pay/transactions/native", 1_700_000_000, "abc123", "{\"a\":1}");
    for pem in [MERCHANT_KEY, MERCHANT_KEY_PKCS1] {
        // PKCS#1 v1.5 is deterministic: the same key and message give openssl's bytes exactly.
        assert_eq!(SigningKey::from_pem(pem).unwrap().sign(message.as_bytes()).unwrap(), OPENSSL_SIGNATURE);
    }
    VerifyingKey::from_pem(MERCHANT_PUB).unwrap().verify(message.as_bytes(), OPENSSL_SIGNATURE).unwrap();
}

#[test]
fn authorization_round_trip_and_refusals() {
    let key = SigningKey::from_pem(MERCHANT_KEY).unwrap();
    let public = VerifyingKey::from_pem(MERCHANT_PUB).unwrap();
    let now = 1_700_000_000;
    let auth = Authorization::sign(&key, "1900000001", "SERIAL1", &post(), now, "n0nce").unwrap();
    let header = auth.header_value();
    assert!(header.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"n0nce\",timestamp="));
    let parsed = Authorization::parse(&header).unwrap();
    assert_eq!(parsed, auth);
    parsed.verify(&public, &post(), now + 299).unwrap();
    parsed.verify(&public, &post(), now - 299).unwrap();
    // Tampered body, path or method; another key; a stale or future timestamp.
    let tampered = RequestParts { body: "{\"a\":2}", ..post() };
    assert!(matches!(parsed.verify(&public, &tampered, now), Err(WechatError::BadSignature(_))));
    let other_path = RequestParts { path_and_query: "/v3/pay/transactions/app", ..post() };
    assert!(parsed.verify(&public, &other_path, now).is_err());
    assert!(parsed.verify(&VerifyingKey::from_pem(OTHER_PUB).unwrap(), &post(), now).is_err());
    assert!(matches!(parsed.verify(&public, &post(), now + 300), Err(WechatError::Stale(_))));
    assert!(matches!(parsed.verify(&public, &post(), now - 301), Err(WechatError::Stale(_))));
}

#[test]
fn authorization_header_parsing_is_strict() {
    let ok = "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"n\",timestamp=\"5\",serial_no=\"s\",signature=\"x\"";
    assert_eq!(Authorization::parse(ok).unwrap().timestamp, 5);
    for bad in [
        "",
        "Bearer x",
        "WECHATPAY2-SHA256-RSA2048",
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"n\",timestamp=\"5\",serial_no=\"s\"",
        "WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str=\"n\",timestamp=\"5\",serial_no=\"s\",signature=\"x\"",
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"n\",timestamp=\"soon\",serial_no=\"s\",signature=\"x\"",
        concat!(
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",mchid=\"2\",",
            "nonce_str=\"n\",timestamp=\"5\",serial_no=\"s\",signature=\"x\""
        ),
        "WECHATPAY2-SHA256-RSA2048 mchid=\"\",nonce_str=\"n\",timestamp=\"5\",serial_no=\"s\",signature=\"x\"",
    ] {
        assert!(Authorization::parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn response_signature_round_trip() {
    let key = SigningKey::from_pem(MERCHANT_KEY).unwrap();
    let public = VerifyingKey::from_pem(MERCHANT_PUB).unwrap();
    let body = "{\"code_url\":\"weixin://wxpay/bizpayurl?pr=abc\"}";
    let signed = ResponseSignature::sign(&key, "PUB_KEY_ID_1", body, 1_700_000_000, "NONCE").unwrap();
    let headers = signed.headers();
    let read =
        ResponseSignature::from_headers(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()))
            .unwrap();
    assert_eq!(read, signed);
    read.verify(&public, body, 1_700_000_100).unwrap();
    assert!(read.verify(&public, "{}", 1_700_000_100).is_err());
    assert!(matches!(read.verify(&public, body, 1_700_000_400), Err(WechatError::Stale(_))));
    assert!(ResponseSignature::from_headers(|_| None).is_err());
}

#[test]
fn aead_matches_python_cryptography_and_refuses_tampering() {
    let key = b"0123456789abcdefghijklmnopqrstuv";
    let plain = b"{\"transaction_id\":\"4200000001\"}";
    let expected = "Io/wPAutke3uqFHAgJAODWqT88VABZU4j7bL8f3RC0UmqQUH0/3v/JDMMUez76Q=";
    assert_eq!(aead_encrypt(key, "fdasflkjq123", "transaction", plain).unwrap(), expected);
    assert_eq!(aead_decrypt(key, "fdasflkjq123", "transaction", expected).unwrap(), plain);
    let resource = Resource::seal(key, "fdasflkjq123", "transaction", plain, "transaction").unwrap();
    assert_eq!(resource.ciphertext, expected);
    assert_eq!(resource.open(key).unwrap(), plain);
    assert!(matches!(
        aead_decrypt(b"0123456789abcdefghijklmnopqrstuX", "fdasflkjq123", "transaction", expected),
        Err(WechatError::Decrypt(_))
    ));
    assert!(aead_decrypt(key, "fdasflkjq123", "refund", expected).is_err());
    assert!(aead_decrypt(key, "fdasflkjq124", "transaction", expected).is_err());
    assert!(aead_decrypt(key, "short", "transaction", expected).is_err());
    assert!(aead_decrypt(key, "fdasflkjq123", "transaction", "AAAA").is_err());
    assert!(matches!(aead_decrypt(b"short", "fdasflkjq123", "", expected), Err(WechatError::Key(_))));
    let mut flipped = STANDARD.decode(expected).unwrap();
    flipped[0] ^= 1;
    assert!(aead_decrypt(key, "fdasflkjq123", "transaction", &STANDARD.encode(flipped)).is_err());
    let other = Resource { algorithm: "AES_CBC".into(), ..resource };
    assert!(other.open(key).is_err());
}

#[test]
fn bad_keys_are_refused_not_panicked_on() {
    for pem in ["", "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----", MERCHANT_PUB] {
        assert!(SigningKey::from_pem(pem).is_err());
    }
    for pem in ["", MERCHANT_KEY, "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----"] {
        assert!(VerifyingKey::from_pem(pem).is_err());
    }
    assert!(VerifyingKey::from_pem(MERCHANT_PUB).unwrap().verify(b"x", "not base64!").is_err());
}

#[test]
fn tokens_are_alphanumeric_and_differ() {
    let (a, b) = (random_token(32), random_token(32));
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(a, b);
}
