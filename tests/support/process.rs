//! The real `weir` binary as a child process: `weir server` started on a loopback port
//! and read line by line, stopped with SIGTERM as Ctrl-C would.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `weir` process whose standard output is read as it comes.
pub struct WeirProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, for failure messages.
    pub output: Vec<String>,
}

impl WeirProcess {
    /// `weir server --addr 127.0.0.1:0 ...` on the data directory `dir`, with the
    /// test admin token.
    pub fn server(dir: &Path, extra: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        cmd.args(["server", "--addr", "127.0.0.1:0", "--grace-seconds", "1"])
            .args(extra)
            .env("WEIR_DATA_DIR", dir)
            .env("WEIR_ADMIN_TOKEN", super::server::ADMIN);
        Self::spawn(cmd)
    }

    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("start weir");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            output: Vec::new(),
        }
    }

    /// The first line from now on that `pred` accepts, within 60 s.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "weir never printed {what} ({e:?}); it printed:\n{}",
                    self.output.join("\n")
                ),
            }
        }
    }

    /// The server's URL, from its first line.
    pub fn url(&mut self) -> String {
        let line = self.wait_for("its address", |l| l.contains("listening on "));
        line.rsplit(' ').next().unwrap().to_owned()
    }

    /// SIGTERM, then waits for the process to end (killing it past 30 s).
    pub fn stop(mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid; it has not been waited for, so the pid
        // is still ours.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for weir") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("weir did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
