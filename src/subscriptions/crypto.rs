//! Webhook signatures (Ed25519, published as a JWK set), callback tokens (HMAC-SHA256
//! over a small JSON payload) and wake ids. Keys are handed in by the caller, who stores
//! them; nothing here reads time or randomness (the caller passes `now` and random bits).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha256};

/// How long a callback or claim token is valid (seconds).
pub const TOKEN_TTL_S: i64 = 3600;

/// The server's webhook signing key.
#[derive(Clone)]
pub struct WebhookSigner {
    key: SigningKey,
    x: String,
    kid: String,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSigner")
            .field("kid", &self.kid)
            .finish()
    }
}

impl WebhookSigner {
    /// The signer of the 32-byte Ed25519 secret `secret`.
    pub fn new(secret: &[u8; 32]) -> WebhookSigner {
        let key = SigningKey::from_bytes(secret);
        let x = B64.encode(key.verifying_key().to_bytes());
        // RFC 7638 thumbprint: the required members in lexicographic order, no spaces.
        let thumb = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = format!("ds_{}", B64.encode(Sha256::digest(thumb.as_bytes())));
        WebhookSigner { key, x, kid }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK set (`GET /v1/stream/__ds/jwks.json`).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": self.x,
                "kid": self.kid,
                "use": "sig",
                "alg": "EdDSA",
            }]
        })
    }

    /// The `Webhook-Signature` value for `body` sent at Unix second `t`: the signature is
    /// over `"<t>.<body>"`.
    pub fn signature_header(&self, t: i64, body: &[u8]) -> String {
        let mut msg = format!("{t}.").into_bytes();
        msg.extend_from_slice(body);
        let sig = self.key.sign(&msg);
        format!(
            "t={t},kid={},ed25519={}",
            self.kid,
            B64.encode(sig.to_bytes())
        )
    }
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

/// A token for subscription `id` at `generation`, valid until `now_s + TOKEN_TTL_S`;
/// `jti` makes each one distinct. The payload is base64url JSON, then `.` and the
/// base64url HMAC of the encoded payload.
pub fn make_token(key: &[u8], id: &str, generation: u64, now_s: i64, jti: u64) -> String {
    let payload = serde_json::json!({
        "sub": format!("subscription:{id}"),
        "epoch": generation,
        "exp": now_s + TOKEN_TTL_S,
        "jti": format!("{jti:016x}"),
    });
    let p = B64.encode(payload.to_string());
    let mac = B64.encode(hmac_sha256(key, p.as_bytes()));
    format!("{p}.{mac}")
}

/// Checks a token of subscription `id`; returns the generation it was issued for.
pub fn check_token(key: &[u8], id: &str, token: &str, now_s: i64) -> Result<u64, TokenError> {
    let (p, mac) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let want = hmac_sha256(key, p.as_bytes());
    let got = B64.decode(mac).map_err(|_| TokenError::Invalid)?;
    if got.len() != want.len() || got.iter().zip(want).fold(0u8, |a, (x, y)| a | (x ^ y)) != 0 {
        return Err(TokenError::Invalid);
    }
    let raw = B64.decode(p).map_err(|_| TokenError::Invalid)?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| TokenError::Invalid)?;
    if v["sub"].as_str() != Some(format!("subscription:{id}").as_str()) {
        return Err(TokenError::Invalid);
    }
    let exp = v["exp"].as_i64().ok_or(TokenError::Invalid)?;
    let epoch = v["epoch"].as_u64().ok_or(TokenError::Invalid)?;
    if now_s > exp {
        return Err(TokenError::Expired);
    }
    Ok(epoch)
}

/// A wake id: `w_` and 24 hex digits from `hi` (32 bits used) and `lo`.
pub fn wake_id(hi: u64, lo: u64) -> String {
    format!("w_{:08x}{lo:016x}", hi & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_check_subject_mac_and_expiry() {
        let key = [7u8; 32];
        let t = make_token(&key, "s1", 4, 1000, 9);
        assert_eq!(check_token(&key, "s1", &t, 1000), Ok(4));
        assert_eq!(check_token(&key, "s2", &t, 1000), Err(TokenError::Invalid));
        assert_eq!(
            check_token(&[8u8; 32], "s1", &t, 1000),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            check_token(&key, "s1", &t, 1000 + TOKEN_TTL_S + 1),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check_token(&key, "s1", "garbage", 0),
            Err(TokenError::Invalid)
        );
        let mut forged = t.clone();
        forged.insert(1, 'x');
        assert_eq!(
            check_token(&key, "s1", &forged, 1000),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn signatures_verify_with_the_published_key() {
        let s = WebhookSigner::new(&[3u8; 32]);
        let h = s.signature_header(1700000000, b"{\"a\":1}");
        let jwks = s.jwks();
        assert_eq!(jwks["keys"][0]["kid"], s.kid());
        assert!(s.kid().starts_with("ds_"));
        let x = B64.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
        let vk = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        let sig = h.rsplit_once("ed25519=").unwrap().1;
        let sig = Signature::from_bytes(&B64.decode(sig).unwrap().try_into().unwrap());
        assert!(vk.verify(b"1700000000.{\"a\":1}", &sig).is_ok());
        assert!(vk.verify(b"1700000001.{\"a\":1}", &sig).is_err());
        assert!(h.starts_with(&format!("t=1700000000,kid={},ed25519=", s.kid())));
    }

    #[test]
    fn wake_ids_have_the_reference_shape() {
        let w = wake_id(0x1_2345_6789, 42);
        assert_eq!(w.len(), 26);
        assert!(w.starts_with("w_23456789"));
    }
}
