//! Child processes (talosctl, helm, curl) die with the harness, however it ends.
//!
//! `kill_on_drop` covers a future dropped on an interrupt or a timeout. A process group of its
//! own keeps a terminal's Ctrl-C away from the child, so the harness alone decides when it stops
//! (and reports why). The parent-death signal covers the harness being killed outright
//! (SIGKILL, OOM): the kernel sends the child SIGKILL when the thread that spawned it exits;
//! the runtime's threads live as long as the process, so in practice when the harness exits.

use tokio::process::Command;

pub trait DiesWithHarness {
    /// Marks the command to die with the harness; call before spawning.
    fn dies_with_harness(&mut self) -> &mut Self;
}

impl DiesWithHarness for Command {
    fn dies_with_harness(&mut self) -> &mut Self {
        self.kill_on_drop(true).process_group(0);
        let parent = rustix::process::getpid();
        // SAFETY: the closure runs in the forked child before exec and makes only
        // async-signal-safe system calls (prctl, getppid), allocating nothing.
        unsafe {
            self.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                // The harness may have died between fork and prctl; then nobody signals us.
                if rustix::process::getppid() != Some(parent) {
                    return Err(std::io::Error::other(
                        "the harness exited before its child started",
                    ));
                }
                Ok(())
            });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_runs_in_its_own_group_with_a_death_signal() {
        let out = Command::new("sh")
            .args(["-c", "ps -o pgid= -p $$; grep '^PPid' /proc/$$/status"])
            .dies_with_harness()
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let pgid: u32 = lines.next().unwrap().trim().parse().unwrap();
        assert_ne!(pgid, std::process::id(), "not in the harness's group");
        let ppid = lines.next().unwrap();
        assert!(ppid.ends_with(&std::process::id().to_string()), "{ppid}");
    }
}
