//! The messages of `proto/webpubsub.proto` as prost structs, written the way `prost-build`
//! would generate them (same field types, tags and nesting), and checked in instead of
//! generated at build time: no `protoc`, no build script, nothing for a fresh CI machine to
//! install. What keeps them true to the `.proto` is tests/protobuf_golden.rs, which compiles the
//! `.proto` with Python's `grpcio-tools` and compares encodings byte for byte both ways.
//!
//! One deliberate difference: `MessageData.protobuf_data` is a `google.protobuf.Any` in the
//! `.proto` and raw bytes here. Both are length-delimited on the wire (the same bytes), and
//! keeping the Any's bytes opaque lets a message pass through the hub without being re-encoded;
//! the codec checks that they parse as an [`Any`] (see `super::check_any`).

#![allow(missing_docs)] // the field docs are the .proto's

/// `google.protobuf.Any`: a type URL and the serialized message it names.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: bytes::Bytes,
}

/// `MessageData`: a payload; its data type is which field is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MessageData {
    #[prost(oneof = "message_data::Data", tags = "1, 2, 3, 4")]
    pub data: Option<message_data::Data>,
}

pub mod message_data {
    /// The `data` oneof of `MessageData`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(string, tag = "1")]
        TextData(String),
        #[prost(bytes = "bytes", tag = "2")]
        BinaryData(bytes::Bytes),
        /// The bytes of a `google.protobuf.Any` (see the module docs).
        #[prost(bytes = "bytes", tag = "3")]
        ProtobufData(bytes::Bytes),
        #[prost(string, tag = "4")]
        JsonData(String),
    }
}

/// `UpstreamMessage`: what a client sends.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpstreamMessage {
    #[prost(oneof = "upstream_message::Message", tags = "1, 5, 6, 7, 8, 9")]
    pub message: Option<upstream_message::Message>,
}

pub mod upstream_message {
    use super::MessageData;

    /// The `message` oneof of `UpstreamMessage`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Message {
        #[prost(message, tag = "1")]
        SendToGroupMessage(SendToGroupMessage),
        #[prost(message, tag = "5")]
        EventMessage(EventMessage),
        #[prost(message, tag = "6")]
        JoinGroupMessage(JoinGroupMessage),
        #[prost(message, tag = "7")]
        LeaveGroupMessage(LeaveGroupMessage),
        #[prost(message, tag = "8")]
        SequenceAckMessage(SequenceAckMessage),
        #[prost(message, tag = "9")]
        PingMessage(PingMessage),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SendToGroupMessage {
        #[prost(string, tag = "1")]
        pub group: String,
        #[prost(uint64, optional, tag = "2")]
        pub ack_id: Option<u64>,
        #[prost(message, optional, tag = "3")]
        pub data: Option<MessageData>,
        #[prost(bool, optional, tag = "4")]
        pub no_echo: Option<bool>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EventMessage {
        #[prost(string, tag = "1")]
        pub event: String,
        #[prost(message, optional, tag = "2")]
        pub data: Option<MessageData>,
        #[prost(uint64, optional, tag = "3")]
        pub ack_id: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct JoinGroupMessage {
        #[prost(string, tag = "1")]
        pub group: String,
        #[prost(uint64, optional, tag = "2")]
        pub ack_id: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LeaveGroupMessage {
        #[prost(string, tag = "1")]
        pub group: String,
        #[prost(uint64, optional, tag = "2")]
        pub ack_id: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SequenceAckMessage {
        #[prost(uint64, tag = "1")]
        pub sequence_id: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PingMessage {}
}

/// `DownstreamMessage`: what the service sends.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DownstreamMessage {
    #[prost(oneof = "downstream_message::Message", tags = "1, 2, 3, 4")]
    pub message: Option<downstream_message::Message>,
}

pub mod downstream_message {
    use super::MessageData;

    /// The `message` oneof of `DownstreamMessage`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Message {
        #[prost(message, tag = "1")]
        AckMessage(AckMessage),
        #[prost(message, tag = "2")]
        DataMessage(DataMessage),
        #[prost(message, tag = "3")]
        SystemMessage(SystemMessage),
        #[prost(message, tag = "4")]
        PongMessage(PongMessage),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AckMessage {
        #[prost(uint64, tag = "1")]
        pub ack_id: u64,
        #[prost(bool, tag = "2")]
        pub success: bool,
        #[prost(message, optional, tag = "3")]
        pub error: Option<ack_message::ErrorMessage>,
    }

    pub mod ack_message {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct ErrorMessage {
            #[prost(string, tag = "1")]
            pub name: String,
            #[prost(string, tag = "2")]
            pub message: String,
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DataMessage {
        #[prost(string, tag = "1")]
        pub from: String,
        #[prost(string, optional, tag = "2")]
        pub group: Option<String>,
        #[prost(message, optional, tag = "3")]
        pub data: Option<MessageData>,
        #[prost(uint64, optional, tag = "4")]
        pub sequence_id: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SystemMessage {
        #[prost(oneof = "system_message::Message", tags = "1, 2")]
        pub message: Option<system_message::Message>,
    }

    pub mod system_message {
        /// The `message` oneof of `SystemMessage`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Message {
            #[prost(message, tag = "1")]
            ConnectedMessage(ConnectedMessage),
            #[prost(message, tag = "2")]
            DisconnectedMessage(DisconnectedMessage),
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub struct ConnectedMessage {
            #[prost(string, tag = "1")]
            pub connection_id: String,
            #[prost(string, tag = "2")]
            pub user_id: String,
            #[prost(string, optional, tag = "3")]
            pub reconnection_token: Option<String>,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub struct DisconnectedMessage {
            #[prost(string, tag = "2")]
            pub reason: String,
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PongMessage {}
}
