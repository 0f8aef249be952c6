//! Integration tests of the server over real sockets, compiled as one test binary.

mod durability;
mod forged;
mod lifecycle;
mod summary;
mod support;
