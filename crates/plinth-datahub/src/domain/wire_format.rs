//! The Confluent wire format: magic byte 0, the schema's global id as 4 big-endian bytes, then the
//! serialized payload (JSON text for JSON Schema). Every record the gateway writes has this framing, and
//! any Confluent-compatible client reads and writes it.

/// The magic byte that starts every framed record.
pub const MAGIC_BYTE: u8 = 0;
/// The length of the prefix before the payload.
pub const PREFIX_LEN: usize = 5;

/// Why bytes are not a framed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireFormatError {
    /// Fewer bytes than the 5-byte prefix.
    #[error(
        "the record has {0} bytes, fewer than the 5-byte Confluent wire-format prefix (magic byte 0 + schema id); it was not written by a Confluent-compatible serializer"
    )]
    TooShort(usize),
    /// The first byte is not 0.
    #[error(
        "the record starts with byte {0}, not the Confluent wire-format magic byte 0; it was not written by a Confluent-compatible serializer"
    )]
    BadMagic(u8),
}

/// Frames `payload` for `schema_id` into a new buffer.
pub fn encode(schema_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(PREFIX_LEN + payload.len());
    encode_into(schema_id, payload, &mut framed);
    framed
}

/// Appends the framed `payload` to `out`.
pub fn encode_into(schema_id: u32, payload: &[u8], out: &mut Vec<u8>) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Splits a framed record into its schema id and payload.
pub fn decode(framed: &[u8]) -> Result<(u32, &[u8]), WireFormatError> {
    if framed.len() < PREFIX_LEN {
        return Err(WireFormatError::TooShort(framed.len()));
    }
    if framed[0] != MAGIC_BYTE {
        return Err(WireFormatError::BadMagic(framed[0]));
    }
    let id = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]);
    Ok((id, &framed[PREFIX_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_id_and_payload() {
        let framed = encode(258, br#"{"a":1}"#);
        assert_eq!(&framed[..5], &[0, 0, 0, 1, 2]);
        assert_eq!(decode(&framed), Ok((258, &br#"{"a":1}"#[..])));
    }

    #[test]
    fn empty_payload_is_allowed() {
        assert_eq!(decode(&encode(7, b"")), Ok((7, &b""[..])));
    }

    #[test]
    fn short_and_unframed_bytes_are_refused() {
        assert_eq!(decode(b"\0\0\0"), Err(WireFormatError::TooShort(3)));
        assert_eq!(decode(b"{\"a\":1}"), Err(WireFormatError::BadMagic(b'{')));
    }
}
