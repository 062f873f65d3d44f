//! A progress bar for the long commands (`replay`, `diff`).

use std::path::{Path, PathBuf};

/// A progress bar with rate and ETA on stderr when it is a terminal; nothing otherwise (CI,
/// pipes, tests). The total is the input's line count, counted first only when there is a
/// terminal to show it on.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    n: u64,
}

impl Progress {
    pub fn new(files: &[PathBuf], label: &str) -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None, n: 0 };
        }
        let total = files.iter().map(|f| count_lines(f).unwrap_or(0)).sum();
        let bar =
            indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr_with_hz(4));
        let style = indicatif::ProgressStyle::with_template(
            "{msg:8} [{bar:32}] {human_pos}/{human_len} lines  {per_sec}  ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_string());
        Progress { bar: Some(bar), n: 0 }
    }

    /// One more input line; the bar is told every 4,096 (it costs a lock).
    pub fn tick(&mut self) {
        self.n += 1;
        if self.n & 4095 == 0 {
            if let Some(b) = &self.bar {
                b.set_position(self.n);
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += buf[..k].iter().filter(|b| **b == b'\n').count() as u64;
    }
}
