// Rebuild when the console changes: rust-embed reads web/ at compile time.
fn main() {
    println!("cargo:rerun-if-changed=web");
}
