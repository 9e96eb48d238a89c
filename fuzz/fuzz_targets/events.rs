//! `cargo xtask fuzz --target events`: see `face_fuzz_targets::events`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| face_fuzz_targets::events(data));
}
