//! Fuzz target: the check of an incoming sync message (`schema::accept`) over a real outcome
//! document, and what the document's actor does with the message after it.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::accept(data));
