//! Any bytes as an e-mail: parsing never panics, always yields a Message-ID (the content hash
//! when the mail has none), and trimming for display never empties a non-empty text.
#![no_main]

use allhands::channels::email::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let email = parse::parse(data);
    assert!(!email.message_id.is_empty());
    assert!(email.text.len() <= parse::MAX_TEXT_BYTES);
    if !email.text.trim().is_empty() {
        assert!(!email.display_text.is_empty());
    }
    let _ = parse::subject_token(&email.subject);
    let _ = parse::base_subject(&email.subject);
});
