//! `cargo xtask fuzz --target image-decode`: see `face_fuzz::image_decode`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| face_fuzz::image_decode(data));
}
