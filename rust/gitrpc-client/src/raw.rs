//! A codec that passes protobuf bytes through untouched, for calls by method name
//! (`/gitaly.RefService/RefExists`) with messages the caller encoded itself.

use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// Check a full method name: `/package.Service/Method`.
pub fn method_path(method: &str) -> Result<http::uri::PathAndQuery, Status> {
    let bad = || {
        Status::invalid_argument(format!(
            "invalid method {method:?}: expected /package.Service/Method"
        ))
    };
    let rest = method.strip_prefix('/').ok_or_else(bad)?;
    let (service, name) = rest.split_once('/').ok_or_else(bad)?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    if !ok(service) || !ok(name) || !service.contains('.') {
        return Err(bad());
    }
    method.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names() {
        assert!(method_path("/gitaly.RefService/RefExists").is_ok());
        for bad in [
            "",
            "gitaly.RefService/RefExists",
            "/gitaly.RefService",
            "/gitaly.RefService/",
            "/RefService/RefExists",
            "/gitaly.RefService/Ref Exists",
            "/gitaly.RefService/RefExists?x=1",
        ] {
            assert!(method_path(bad).is_err(), "{bad}");
        }
    }
}
