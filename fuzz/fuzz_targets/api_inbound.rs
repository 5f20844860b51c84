//! Any bytes as the API channel's inbound body: parsing answers a value or an error, never a
//! panic, and signature verification accepts nothing but the exact signature.
#![no_main]

use allhands::channels::api;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = api::parse_inbound(data);
    let now = 1_790_000_000_000;
    let timestamp = "1790000000";
    assert!(api::verify("secret", timestamp, "sha256=00", data, now).is_err());
    let genuine = api::sign("secret", timestamp, data);
    assert!(api::verify("secret", timestamp, &genuine, data, now).is_ok());
});
