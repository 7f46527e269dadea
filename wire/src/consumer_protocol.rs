//! The consumer protocol inside group metadata: the broker normally treats members' metadata
//! as opaque bytes, but OffsetDelete must know which topics a consumer group subscribes to.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Message};

/// Topics of a `consumer` protocol subscription (a version prefix, then the subscription);
/// empty when the bytes are not one.
pub fn subscribed_topics(metadata: &Bytes) -> Vec<String> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf
        .get_i16()
        .min(ConsumerProtocolSubscription::VERSIONS.max);
    match ConsumerProtocolSubscription::decode(&mut buf, version) {
        Ok(s) => s.topics.into_iter().map(|t| t.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn reads_the_topics_of_a_subscription() {
        let sub = ConsumerProtocolSubscription::default().with_topics(vec![
            StrBytes::from_static_str("a"),
            StrBytes::from_static_str("b"),
        ]);
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(1);
        sub.encode(&mut buf, 1).unwrap();
        assert_eq!(subscribed_topics(&buf.freeze()), ["a", "b"]);
        assert!(subscribed_topics(&Bytes::from_static(b"\x00")).is_empty());
        assert!(subscribed_topics(&Bytes::from_static(b"\x00\x01\xff")).is_empty());
    }
}
