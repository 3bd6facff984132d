//! [`Named`]: names to values, sorted by name, each name once (the config's maps).

use serde::Serialize;

/// Names to values, sorted by name, each name once: the config's `featureFlags` and
/// `rateLimits`, serialised as a JSON object. A sorted list rather than a `BTreeMap`: these
/// maps are small (the whole document is at most
/// [`crate::domain::config::MAX_CONFIG_BYTES`]) and every `BTreeMap`
/// type is several KB of its own code in the Wasm.
#[derive(Debug, Clone, PartialEq)]
pub struct Named<T>(Vec<(String, T)>);

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named(Vec::new())
    }
}

impl<T> Named<T> {
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    /// Where `name` is in name order.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.position(name).ok()
    }

    /// The name and value at `index` in name order.
    pub fn at(&self, index: usize) -> Option<(&str, &T)> {
        self.0.get(index).map(|(k, v)| (k.as_str(), v))
    }

    /// Whether `name` has a value.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets the value of `name`, returning the one it replaces.
    pub fn insert(&mut self, name: String, value: T) -> Option<T> {
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<T> {
        self.position(name).ok().map(|i| self.0.remove(i).1)
    }

    /// Removes every name.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// How many names have a value.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no name has a value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names and their values, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<T> FromIterator<(String, T)> for Named<T> {
    /// Later pairs replace earlier ones of the same name.
    fn from_iter<I: IntoIterator<Item = (String, T)>>(pairs: I) -> Self {
        let mut out = Named::default();
        for (name, value) in pairs {
            out.insert(name, value);
        }
        out
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_maps_keep_names_sorted_and_serialise_as_a_btreemap_does() {
        let mut m: Named<u32> = Named::default();
        assert!(m.is_empty());
        for (k, v) in [("m", 1), ("a", 2), ("z", 3), ("a", 4)] {
            m.insert(k.into(), v);
        }
        assert_eq!(m.insert("m".into(), 5), Some(1));
        assert_eq!(m.remove("z"), Some(3));
        assert_eq!(m.remove("z"), None);
        assert_eq!((m.get("a"), m.get("q"), m.len()), (Some(&4), None, 2));
        assert!(m.contains_key("m") && !m.contains_key("z"));
        let names: Vec<&String> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["a", "m"]);
        let map = std::collections::BTreeMap::from([("m", 5), ("a", 4)]);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        let from: Named<u32> = [
            ("b".to_string(), 1),
            ("a".to_string(), 2),
            ("b".to_string(), 3),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            from.iter().collect::<Vec<_>>(),
            [(&"a".to_string(), &2), (&"b".to_string(), &3)]
        );
        assert_eq!((m.index("m"), m.index("b")), (Some(1), None));
        assert_eq!((m.at(0), m.at(2)), (Some(("a", &4)), None));
        m.clear();
        assert!(m.is_empty());
    }
}
