//! Integration tests of the server over real sockets, compiled as one test binary.

mod attribution;
mod batches;
mod cluster;
mod cold;
mod convergence;
mod crash;
mod durability;
mod fanout;
mod forged;
mod fuzz_corpus;
mod hostile;
mod lifecycle;
mod network;
mod openapi;
mod real_faults;
mod storage_faults;
mod summary;
mod summary_live;
mod support;
