//! The process description: what runs inside the container.
//!
//! This is the part of a container that an OCI runtime spec calls `process`: the argument vector,
//! the environment and the working directory. The root it runs in is a [`crate::Feature`]'s
//! business, so the same description serves every stage. See execve(2) and environ(7).

use std::ffi::CString;

use crate::error::LaunchError;

/// The `PATH` a container gets when nobody sets one: the value Docker and runc use.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// ANCHOR: process
/// What to run inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The command and its arguments; `args[0]` is looked up in `PATH` when it holds no `/`.
    pub args: Vec<String>,
    /// The environment, as `KEY=VALUE` strings; nothing is inherited from the engine.
    pub env: Vec<String>,
    /// The working directory, an absolute path inside the container's root.
    pub cwd: String,
}
// ANCHOR_END: process

impl Process {
    /// A process running `args` in `/` with only the default `PATH` in its environment.
    pub fn new(args: Vec<String>) -> Self {
        Process {
            args,
            env: vec![format!("PATH={DEFAULT_PATH}")],
            cwd: "/".into(),
        }
    }

    /// Sets `key` to `value`, replacing an earlier value of the same key.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let prefix = format!("{key}=");
        self.env.retain(|entry| !entry.starts_with(&prefix));
        self.env.push(format!("{key}={value}"));
    }

    /// The value of `key` in the environment, if set.
    pub fn get_env(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|entry| {
            let (k, v) = entry.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    /// Applies one `-e` argument the way `docker run -e` does: `KEY=VALUE` sets the variable, a
    /// bare `KEY` copies the engine's own value if it has one and is otherwise ignored.
    pub fn apply_env_arg(&mut self, arg: &str) -> Result<(), LaunchError> {
        let (key, value) = match arg.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (arg, std::env::var(arg).ok()),
        };
        if key.is_empty()
            || key.contains('\0')
            || value.as_deref().is_some_and(|v| v.contains('\0'))
        {
            return Err(LaunchError::BadEnv(arg.to_string()));
        }
        if let Some(value) = value {
            self.set_env(key, &value);
        }
        Ok(())
    }

    /// The paths `execve` will try, in order: the command itself when it holds a `/`, otherwise
    /// each directory of the container's `PATH` joined with it, as execvp(3) does.
    pub fn exec_candidates(&self) -> Vec<String> {
        let Some(command) = self.args.first() else {
            return Vec::new();
        };
        if command.contains('/') {
            return vec![command.clone()];
        }
        let path = self.get_env("PATH").unwrap_or(DEFAULT_PATH);
        path.split(':')
            .map(|dir| if dir.is_empty() { "." } else { dir })
            .map(|dir| format!("{}/{command}", dir.trim_end_matches('/')))
            .collect()
    }

    /// Checks what the kernel will refuse later, while a clear error is still cheap.
    pub fn validate(&self) -> Result<(), LaunchError> {
        match self.args.first() {
            None => return Err(LaunchError::NoCommand),
            Some(command) if command.is_empty() => return Err(LaunchError::NoCommand),
            Some(_) => {}
        }
        if let Some(arg) = self.args.iter().find(|a| a.contains('\0')) {
            return Err(LaunchError::NulByte(arg.clone()));
        }
        if !self.cwd.starts_with('/') {
            return Err(LaunchError::RelativeWorkdir(self.cwd.clone()));
        }
        Ok(())
    }
}

/// Turns strings into the C strings `execve` wants; callers have validated them.
pub(crate) fn c_strings(items: &[String]) -> Result<Vec<CString>, LaunchError> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| LaunchError::NulByte(s.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_set() {
        let p = Process::new(vec!["sh".into()]);
        assert_eq!(p.get_env("PATH"), Some(DEFAULT_PATH));
    }

    #[test]
    fn env_arg_replaces_earlier_value() {
        let mut p = Process::new(vec!["sh".into()]);
        p.apply_env_arg("A=1").unwrap();
        p.apply_env_arg("A=2").unwrap();
        p.apply_env_arg("PATH=/x").unwrap();
        assert_eq!(p.env, vec!["A=2".to_string(), "PATH=/x".to_string()]);
    }

    #[test]
    fn env_arg_with_empty_key_is_refused() {
        let mut p = Process::new(vec!["sh".into()]);
        let err = p.apply_env_arg("=oops").unwrap_err();
        assert!(err.to_string().contains("=oops"), "{err}");
    }

    #[test]
    fn bare_env_key_without_host_value_is_dropped() {
        let mut p = Process::new(vec!["sh".into()]);
        p.apply_env_arg("SKIFF_SURELY_UNSET_VARIABLE").unwrap();
        assert_eq!(p.env.len(), 1);
    }

    #[test]
    fn command_without_slash_is_searched_in_path() {
        let mut p = Process::new(vec!["probe".into()]);
        p.set_env("PATH", "/bin:/usr/bin/::/opt");
        assert_eq!(
            p.exec_candidates(),
            ["/bin/probe", "/usr/bin/probe", "./probe", "/opt/probe"]
        );
        p.args[0] = "./tool".into();
        assert_eq!(p.exec_candidates(), ["./tool"]);
    }

    #[test]
    fn empty_command_and_relative_workdir_are_refused() {
        assert!(matches!(
            Process::new(vec![]).validate(),
            Err(LaunchError::NoCommand)
        ));
        let mut p = Process::new(vec!["sh".into()]);
        p.cwd = "tmp".into();
        assert!(matches!(p.validate(), Err(LaunchError::RelativeWorkdir(_))));
    }
}
