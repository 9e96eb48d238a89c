//! AWS Lambda's on-demand prices (us-east-1, the first pricing tier): the
//! one table behind every cost figure, the `usd` of a video job's usage
//! ([`crate::jobs`]) included: the workers' metering, the client-side
//! coordinator, `facectl scan-video`'s estimate and `xtask simulate-scan`.

/// USD per GB-second on x86_64.
pub const USD_PER_GB_S_X86_64: f64 = 0.000_016_666_7;
/// USD per GB-second on arm64 (Graviton).
pub const USD_PER_GB_S_ARM64: f64 = 0.000_013_333_4;
/// USD per request.
pub const USD_PER_REQUEST: f64 = 0.20 / 1_000_000.0;

/// GB-seconds of `ms` milliseconds at `memory_mib`.
pub fn gb_s(ms: f64, memory_mib: u32) -> f64 {
    ms / 1000.0 * f64::from(memory_mib) / 1024.0
}

/// The price of `gb_s` GB-seconds and `requests` requests.
pub fn usd(gb_s: f64, requests: u64, arm64: bool) -> f64 {
    let per_gb_s = if arm64 {
        USD_PER_GB_S_ARM64
    } else {
        USD_PER_GB_S_X86_64
    };
    gb_s * per_gb_s + requests as f64 * USD_PER_REQUEST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_at_one_gib_is_one_gb_s() {
        assert_eq!(gb_s(1000.0, 1024), 1.0);
        assert!((usd(1.0, 1, false) - (USD_PER_GB_S_X86_64 + 2e-7)).abs() < 1e-15);
        assert!(usd(1.0, 0, true) < usd(1.0, 0, false));
    }
}
