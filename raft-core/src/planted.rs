//! The declaration of a set of planted bugs ("canaries"): one list gives the struct of flags,
//! the names `--bug` accepts, the one-line description the canary table prints, and lookup by
//! name, so a new canary is one entry (plus its one wrong line in the code) and no name table
//! can fall out of step with the flags.

/// Declares a struct of planted-bug flags, all off by default, with
/// `NAMES` (in declaration order), `DESCRIPTIONS` (name and one-line description),
/// `from_name`, `describe` and `any`.
///
/// ```
/// raft_core::planted_bugs! {
///     /// Bugs of a counter service.
///     #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
///     pub struct CounterBugs {
///         /// An increment is applied twice on a retry.
///         double_increment => "a retried increment is applied twice",
///     }
/// }
/// assert_eq!(CounterBugs::NAMES, ["double_increment"]);
/// assert!(CounterBugs::from_name("double_increment").unwrap().double_increment);
/// let what = CounterBugs::describe("double_increment");
/// assert_eq!(what, Some("a retried increment is applied twice"));
/// assert!(CounterBugs::from_name("nope").is_none());
/// ```
#[macro_export]
macro_rules! planted_bugs {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident => $what:literal,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: bool,
            )*
        }

        impl $name {
            /// The name of every bug, as accepted by `from_name`, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Every bug's name with what it does, in one line (the canary table's column).
            pub const DESCRIPTIONS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($field), $what)),*];

            /// A set with only the named bug enabled, or `None` for an unknown name.
            pub fn from_name(name: &str) -> Option<$name> {
                let mut bugs = $name::default();
                match name {
                    $(stringify!($field) => bugs.$field = true,)*
                    _ => return None,
                }
                Some(bugs)
            }

            /// What the bug called `name` does, in one line, or `None` for an unknown name.
            pub fn describe(name: &str) -> Option<&'static str> {
                Self::DESCRIPTIONS
                    .iter()
                    .find(|(known, _)| *known == name)
                    .map(|(_, what)| *what)
            }

            /// True if any bug is enabled.
            pub fn any(&self) -> bool {
                false $(|| self.$field)*
            }
        }
    };
}
