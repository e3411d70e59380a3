//! What Linux's `/proc` says about a process: resident memory
//! (`/proc/<pid>/status`, `VmRSS`) and CPU time spent (`/proc/<pid>/stat`,
//! `utime + stime`, in clock ticks).
//!
//! The clock tick is asked of `getconf CLK_TCK` once (the library forbids
//! `unsafe`, so no `sysconf` call); it is 100 on every Linux we know of,
//! which is also the fallback.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::BenchError;

/// A process to measure: another one (`--server-pid`) or this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Pid(u32),
    Current,
}

impl Process {
    fn path(self, file: &str) -> PathBuf {
        match self {
            Process::Pid(pid) => PathBuf::from(format!("/proc/{pid}/{file}")),
            Process::Current => PathBuf::from(format!("/proc/self/{file}")),
        }
    }

    fn read(self, file: &str) -> Result<(PathBuf, String), BenchError> {
        let path = self.path(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((path, text)),
            Err(source) => Err(BenchError::Proc { path, source }),
        }
    }

    /// Resident memory in KiB.
    pub fn rss_kib(self) -> Result<u64, BenchError> {
        let (path, text) = self.read("status")?;
        parse_vmrss_kib(&text).ok_or(BenchError::ProcFormat { path, field: "VmRSS" })
    }

    /// User plus system CPU time, in seconds.
    pub fn cpu_seconds(self) -> Result<f64, BenchError> {
        let (path, text) = self.read("stat")?;
        let ticks = parse_cpu_ticks(&text).ok_or(BenchError::ProcFormat { path, field: "utime/stime" })?;
        Ok(ticks as f64 / clock_ticks_per_second() as f64)
    }

    pub fn sample(self) -> Result<ProcSample, BenchError> {
        Ok(ProcSample { rss_kib: self.rss_kib()?, cpu_seconds: self.cpu_seconds()? })
    }
}

/// Memory and CPU of a process at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub cpu_seconds: f64,
}

/// `VmRSS:   123456 kB` → 123456.
pub fn parse_vmrss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Fields 14 and 15 of `/proc/<pid>/stat`. The second field, the command
/// name in parentheses, may itself contain spaces and parentheses, so
/// counting starts after the last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: field 3 (state) is the first; utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's clock ticks per second, the unit of `/proc/<pid>/stat`.
pub fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100)
    })
}

/// The soft limit on open files of this process (`Max open files`).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmrss_is_read_from_status() {
        let status = "Name:\tfanfare\nVmPeak:\t  9000 kB\nVmRSS:\t   123456 kB\nThreads:\t3\n";
        assert_eq!(parse_vmrss_kib(status), Some(123_456));
        assert_eq!(parse_vmrss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_names() {
        let stat = "4242 (odd) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn this_process_can_be_measured() {
        let sample = Process::Current.sample().unwrap();
        assert!(sample.rss_kib > 0);
        assert!(sample.cpu_seconds >= 0.0);
        assert!(clock_ticks_per_second() > 0);
        assert!(open_files_limit().is_some_and(|n| n > 0));
        let own = Process::Pid(std::process::id()).rss_kib().unwrap();
        assert!(own > 0);
    }

    #[test]
    fn a_missing_process_is_an_error_naming_the_file() {
        let error = Process::Pid(u32::MAX).rss_kib().unwrap_err();
        assert!(error.to_string().contains(&format!("/proc/{}/status", u32::MAX)), "{error}");
    }
}
