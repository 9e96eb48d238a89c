//! `cargo xtask fuzz --target image-decode`: see `face_fuzz_targets::image_decode`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| face_fuzz_targets::image_decode(data));
}
