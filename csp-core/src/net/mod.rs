//! The plumbing between OS processes: framing and authentication, independent of transport.
//!
//! These layers are what a connection between two OS processes of one network is made of:
//! [`auth`] proves both ends know the network's secret before a single frame is decoded, and
//! [`frame`] cuts the byte stream into bounded, length-prefixed frames. Neither knows the
//! transport: today it is a Unix socket in a private directory, and TCP between hosts can
//! follow without changing either.

pub(crate) mod address;
pub mod auth;
pub(crate) mod connection;
pub(crate) mod encoder;
pub mod frame;
pub(crate) mod message;
pub(crate) mod shared_memory;
