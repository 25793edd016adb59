// A new migration must never be silently left out of the binary that embeds them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
