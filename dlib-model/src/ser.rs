//! dlib's binary serialization primitives (`dlib/serialize.h`,
//! `dlib/float_details.h`, `dlib/cuda/tensor.h`), read from a byte slice.
//!
//! * Integers: a control byte whose high bit is the sign and whose low 4 bits
//!   count the bytes that follow; the absolute value follows, little endian.
//!   Unsigned types mask the control byte with 0x8F, so a set sign bit makes
//!   them invalid.
//! * `bool`: one ASCII byte, `'1'` or `'0'`.
//! * Floating point: a `float_details`, i.e. the mantissa (int64) then the
//!   exponent (int16), both as integers above; the value is
//!   `mantissa * 2^exponent`, exponents 32000/32001/32002 mean +inf/-inf/NaN.
//!   dlib's older ASCII float format (a first byte with any of the bits 0x70
//!   set) is not supported.
//! * `std::string`: the length as an unsigned integer, then the bytes.
//! * `resizable_tensor`: int version, then num_samples, k, nr, nc (long),
//!   then the values: version 1 writes each as a float above, version 2 as
//!   raw little-endian IEEE f32.
//! * `alias_tensor`: int version 1, then num_samples, k, nr, nc.

use crate::error::{Error, Result};

const IS_INF: i16 = 32000;
const IS_NINF: i16 = 32001;

/// A dlib tensor: shape `[num_samples, k, nr, nc]`, row-major values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DlibTensor {
    pub(crate) shape: [usize; 4],
    pub(crate) data: Vec<f32>,
}

/// Cursor over dlib-serialized bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn malformed(&self, what: &str, reason: impl Into<String>) -> Error {
        Error::Malformed {
            offset: self.pos,
            what: what.to_string(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated {
                offset: self.pos,
                what: what.to_string(),
                needed: n - self.remaining(),
            });
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn peek(&self, what: &str) -> Result<u8> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or_else(|| Error::Truncated {
                offset: self.pos,
                what: what.to_string(),
                needed: 1,
            })
    }

    /// The magnitude bytes after a control byte that announces `size` bytes.
    fn magnitude(&mut self, size: u8, max_bytes: u8, what: &str) -> Result<u64> {
        if size == 0 || size > max_bytes {
            // dlib never writes 0 bytes (zero is written as one 0x00 byte).
            return Err(self.malformed(
                what,
                format!("integer of {size} byte(s), at most {max_bytes} allowed"),
            ));
        }
        let bytes = self.take(usize::from(size), what)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A signed integer of at most `max_bytes` bytes (the C++ type's size).
    fn signed(&mut self, max_bytes: u8, what: &str) -> Result<i64> {
        let start = self.pos;
        let control = self.byte(what)?;
        let magnitude = self.magnitude(control & 0x0F, max_bytes, what)?;
        let value = if control & 0x80 != 0 {
            -i128::from(magnitude)
        } else {
            i128::from(magnitude)
        };
        i64::try_from(value).map_err(|_| Error::Malformed {
            offset: start,
            what: what.to_string(),
            reason: format!("{value} does not fit in a signed 64-bit integer"),
        })
    }

    /// dlib `int` (4 bytes).
    pub(crate) fn read_i32(&mut self, what: &str) -> Result<i32> {
        let start = self.pos;
        let v = self.signed(4, what)?;
        i32::try_from(v).map_err(|_| Error::Malformed {
            offset: start,
            what: what.to_string(),
            reason: format!("{v} does not fit in an int"),
        })
    }

    /// dlib `long` / `int64` (8 bytes on the platforms dlib models come from).
    pub(crate) fn read_i64(&mut self, what: &str) -> Result<i64> {
        self.signed(8, what)
    }

    fn read_i16(&mut self, what: &str) -> Result<i16> {
        let start = self.pos;
        let v = self.signed(2, what)?;
        i16::try_from(v).map_err(|_| Error::Malformed {
            offset: start,
            what: what.to_string(),
            reason: format!("{v} does not fit in an int16"),
        })
    }

    /// dlib `unsigned long` / `size_t` / `uint64`.
    pub(crate) fn read_u64(&mut self, what: &str) -> Result<u64> {
        let control = self.byte(what)?;
        // dlib masks out the 3 reserved bits; a sign bit leaves size > 8.
        let size = control & 0x8F;
        self.magnitude(size, 8, what)
    }

    /// A non-negative `long` used as a size or count.
    pub(crate) fn read_len(&mut self, what: &str) -> Result<usize> {
        let start = self.pos;
        let v = self.read_i64(what)?;
        usize::try_from(v).map_err(|_| Error::Malformed {
            offset: start,
            what: what.to_string(),
            reason: format!("{v} is not a valid size"),
        })
    }

    pub(crate) fn read_bool(&mut self, what: &str) -> Result<bool> {
        match self.byte(what)? {
            b'1' => Ok(true),
            b'0' => Ok(false),
            other => Err(Error::Malformed {
                offset: self.pos - 1,
                what: what.to_string(),
                reason: format!("bool byte 0x{other:02x}, expected '0' or '1'"),
            }),
        }
    }

    pub(crate) fn read_string(&mut self, what: &str) -> Result<String> {
        let start = self.pos;
        let len = self.read_u64(what)?;
        let len = usize::try_from(len).map_err(|_| Error::Malformed {
            offset: start,
            what: what.to_string(),
            reason: format!("string length {len} too large"),
        })?;
        let bytes = self.take(len, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The (mantissa, exponent) pair of a `float_details`.
    fn float_details(&mut self, what: &str) -> Result<(i64, i16)> {
        if self.peek(what)? & 0x70 != 0 {
            return Err(self.malformed(
                what,
                "dlib's old ASCII floating point format is not supported",
            ));
        }
        let mantissa = self.read_i64(what)?;
        let exponent = self.read_i16(what)?;
        Ok((mantissa, exponent))
    }

    /// A `float` (as `float_details::operator float`: the mantissa is
    /// rounded to f32, then scaled by `2^exponent`).
    pub(crate) fn read_f32(&mut self, what: &str) -> Result<f32> {
        let (mantissa, exponent) = self.float_details(what)?;
        Ok(match exponent {
            e if e < IS_INF => ldexp_f32(mantissa as f32, i32::from(e)),
            IS_INF => f32::INFINITY,
            IS_NINF => f32::NEG_INFINITY,
            _ => f32::NAN,
        })
    }

    /// A `double`.
    pub(crate) fn read_f64(&mut self, what: &str) -> Result<f64> {
        let (mantissa, exponent) = self.float_details(what)?;
        Ok(match exponent {
            e if e < IS_INF => ldexp_f64(mantissa as f64, i32::from(e)),
            IS_INF => f64::INFINITY,
            IS_NINF => f64::NEG_INFINITY,
            _ => f64::NAN,
        })
    }

    fn read_shape(&mut self, what: &str) -> Result<[usize; 4]> {
        Ok([
            self.read_len(what)?,
            self.read_len(what)?,
            self.read_len(what)?,
            self.read_len(what)?,
        ])
    }

    /// A `resizable_tensor` (versions 1 and 2).
    pub(crate) fn read_tensor(&mut self, what: &str) -> Result<DlibTensor> {
        let version = self.read_i32(what)?;
        if version != 1 && version != 2 {
            return Err(self.malformed(what, format!("tensor version {version}, expected 1 or 2")));
        }
        let shape = self.read_shape(what)?;
        let size = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| self.malformed(what, format!("tensor shape {shape:?} overflows")))?;
        // Both encodings take at least 4 bytes per value (version 1: two
        // integers of at least 2 bytes each): refuse sizes the remaining bytes
        // cannot hold before allocating.
        let min_bytes = size.saturating_mul(4);
        if min_bytes > self.remaining() {
            return Err(Error::Truncated {
                offset: self.pos,
                what: format!("{what}: tensor of shape {shape:?}"),
                needed: min_bytes - self.remaining(),
            });
        }
        let data = if version == 2 {
            self.take(size * 4, what)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            (0..size)
                .map(|_| self.read_f32(what))
                .collect::<Result<Vec<_>>>()?
        };
        Ok(DlibTensor { shape, data })
    }

    /// An `alias_tensor`: only a shape.
    pub(crate) fn read_alias_tensor(&mut self, what: &str) -> Result<[usize; 4]> {
        let version = self.read_i32(what)?;
        if version != 1 {
            return Err(self.malformed(what, format!("alias_tensor version {version}, expected 1")));
        }
        self.read_shape(what)
    }

    /// A dlib layer-details version string, checked against `accepted`.
    pub(crate) fn read_version(&mut self, what: &str, accepted: &[&str]) -> Result<String> {
        let start = self.pos;
        let version = self.read_string(what)?;
        if accepted.contains(&version.as_str()) {
            Ok(version)
        } else {
            Err(Error::Malformed {
                offset: start,
                what: what.to_string(),
                reason: format!("found version tag {version:?}, expected one of {accepted:?}"),
            })
        }
    }
}

/// `x * 2^e` in f64, scaling in steps so no power of two overflows.
fn ldexp_f64(mut x: f64, mut e: i32) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e)
}

/// `x * 2^e` in f32 (C's `ldexpf`), scaling in steps within f32's range.
fn ldexp_f32(mut x: f32, mut e: i32) -> f32 {
    while e > 100 {
        x *= 2f32.powi(100);
        e -= 100;
    }
    while e < -100 {
        x *= 2f32.powi(-100);
        e += 100;
    }
    x * 2f32.powi(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_dlib_pack_int() {
        // 0 -> 01 00; 256 -> 02 00 01; -28 -> 81 1c; 128 -> 01 80.
        let bytes = [0x01, 0x00, 0x02, 0x00, 0x01, 0x81, 0x1c, 0x01, 0x80];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_i64("a").ok(), Some(0));
        assert_eq!(r.read_u64("b").ok(), Some(256));
        assert_eq!(r.read_i32("c").ok(), Some(-28));
        assert_eq!(r.read_len("d").ok(), Some(128));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn unsigned_rejects_sign_bit_and_oversize() {
        assert!(Reader::new(&[0x81, 0x01]).read_u64("x").is_err());
        assert!(Reader::new(&[0x05, 1, 2, 3, 4, 5]).read_i32("x").is_err());
        assert!(Reader::new(&[0x00]).read_i64("x").is_err());
        assert!(matches!(
            Reader::new(&[0x04, 1]).read_i64("x"),
            Err(Error::Truncated { needed: 3, .. })
        ));
    }

    #[test]
    fn floats_are_mantissa_then_exponent() {
        // The loss_metric_2 margin 0.04 and threshold 0.6 as stored in
        // dlib_face_recognition_resnet_model_v1.dat, then 1.0 and 0.0.
        let bytes = [
            0x03, 0x0a, 0xd7, 0xa3, 0x81, 0x1c, 0x03, 0x9a, 0x99, 0x99, 0x81, 0x18, 0x01, 0x10,
            0x81, 0x04, 0x01, 0x00, 0x01, 0x0b,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_f32("margin").ok(), Some(0.04));
        assert_eq!(r.read_f32("threshold").ok(), Some(0.6));
        assert_eq!(r.read_f64("one").ok(), Some(1.0));
        assert_eq!(r.read_f64("zero").ok(), Some(0.0));
    }

    #[test]
    fn float_specials_and_ascii_format() {
        // exponent 32000 = 0x7d00 -> +inf; 32002 -> NaN
        let inf = [0x01, 0x00, 0x02, 0x00, 0x7d];
        assert_eq!(Reader::new(&inf).read_f32("x").ok(), Some(f32::INFINITY));
        let nan = [0x01, 0x00, 0x02, 0x02, 0x7d];
        assert!(Reader::new(&nan).read_f64("x").is_ok_and(f64::is_nan));
        assert!(Reader::new(b"1.5 ").read_f32("x").is_err());
    }

    #[test]
    fn tensors_v1_and_v2() {
        // version 2, shape 1x2x1x1, raw f32 1.0 and -2.0
        let mut v2 = vec![0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x01, 0x01];
        v2.extend_from_slice(&1.0f32.to_le_bytes());
        v2.extend_from_slice(&(-2.0f32).to_le_bytes());
        let t = Reader::new(&v2).read_tensor("t");
        assert_eq!(t.ok().map(|t| t.data), Some(vec![1.0, -2.0]));
        // version 1, shape 1x1x1x1, float_details 1.0
        let v1 = [
            0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x10, 0x81, 0x04,
        ];
        let t = Reader::new(&v1).read_tensor("t");
        assert_eq!(t.ok().map(|t| t.data), Some(vec![1.0]));
        // a huge shape with no data behind it fails without allocating
        let huge = [
            0x01, 0x02, 0x04, 0xff, 0xff, 0xff, 0x7f, 0x01, 0x10, 0x01, 0x10, 0x01, 0x10,
        ];
        assert!(matches!(
            Reader::new(&huge).read_tensor("t"),
            Err(Error::Truncated { .. })
        ));
    }
}
