//! Lambda's instruction sets: the stack YAML's `architecture`, the
//! template's `Architectures`, the artifact folder
//! `target/lambda-dist/<arch>/`, and which Runtime Interface Emulator runs
//! a bootstrap locally.

/// Instruction set of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Architecture {
    X86_64,
    Arm64,
}

impl Architecture {
    /// Both, in Lambda's order.
    pub const ALL: [Architecture; 2] = [Architecture::X86_64, Architecture::Arm64];

    /// Lambda's name, also the artifact folder `target/lambda-dist/<arch>/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// Parses Lambda's name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The machine this program was compiled for, if Lambda has it.
    pub fn host() -> Option<Self> {
        if cfg!(target_arch = "x86_64") {
            Some(Architecture::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Architecture::Arm64)
        } else {
            None
        }
    }

    /// The name Linux (`uname -m`) and QEMU (`qemu-<name>-static`) use.
    pub fn machine_name(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "aarch64",
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for arch in Architecture::ALL {
            assert_eq!(Architecture::parse(arch.as_str()), Some(arch));
        }
        assert_eq!(Architecture::parse("aarch64"), None);
        assert_eq!(Architecture::parse("x86-64"), None);
        assert_eq!(Architecture::Arm64.machine_name(), "aarch64");
    }
}
