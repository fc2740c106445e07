//! What GitHub would reject: REST requests checked against the official OpenAPI
//! description (operation + JSON request body schema), GraphQL documents against
//! the official schema.

use std::collections::HashMap;
use std::sync::OnceLock;

use graphql_parser::query as q;
use graphql_parser::schema as s;
use serde_json::Value;

fn fixtures() -> std::path::PathBuf {
    super::fixtures().join("github")
}

pub fn openapi() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let text = std::fs::read_to_string(fixtures().join("openapi-subset.json")).expect("openapi subset");
        serde_json::from_str(&text).expect("openapi json")
    })
}

/// Matches `method path` to an operation; returns (template, path params).
pub fn match_operation(method: &str, path: &str) -> Option<(String, HashMap<String, String>)> {
    let spec = openapi();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut greedy_match = None;
    for (template, ops) in spec["paths"].as_object()? {
        if ops.get(method).is_none() {
            continue;
        }
        let tsegs: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        let mut params = HashMap::new();
        let exact = tsegs.len() == segs.len();
        // Only `{path}` and `{ref}` take slashes (`contents/a/b.yaml`, `matching-refs/tags/x`).
        let greedy =
            !exact && segs.len() > tsegs.len() && tsegs.last().is_some_and(|t| *t == "{path}" || *t == "{ref}");
        if !exact && !greedy {
            continue;
        }
        let mut ok = true;
        for (i, t) in tsegs.iter().enumerate() {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                let value = if greedy && i == tsegs.len() - 1 {
                    segs[i..].join("/")
                } else {
                    segs[i].to_string()
                };
                if value.is_empty() {
                    ok = false;
                    break;
                }
                params.insert(name.to_string(), percent_decode(&value));
            } else if *t != segs[i] {
                ok = false;
                break;
            }
        }
        if ok {
            if exact {
                return Some((template.clone(), params));
            }
            greedy_match = Some((template.clone(), params));
        }
    }
    greedy_match
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Validates a JSON request body against the operation's requestBody schema.
pub fn check_body(method: &str, template: &str, body: Option<&Value>) -> Vec<String> {
    let op = &openapi()["paths"][template][method];
    let rb = &op["requestBody"];
    let mut errs = Vec::new();
    match (rb.is_null(), body) {
        (true, Some(b)) if !b.is_null() => errs.push(format!("{method} {template} takes no request body")),
        (false, None) if rb["required"] == true => errs.push(format!("{method} {template} requires a body")),
        (false, Some(b)) => {
            let schema = &rb["content"]["application/json"]["schema"];
            validate(schema, b, "body", &mut errs);
        }
        _ => {}
    }
    errs
}

/// Validates an answer the fake GitHub gives against the operation's documented
/// response: a 2xx status must be documented, and a JSON body must satisfy its schema.
pub fn check_response(method: &str, template: &str, status: u16, body: &Value) -> Vec<String> {
    if !(200..300).contains(&status) {
        return Vec::new();
    }
    let responses = &openapi()["paths"][template][method]["responses"];
    let Some(documented) = responses.get(status.to_string()) else {
        return vec![format!("{method} {template}: GitHub does not answer {status}")];
    };
    let schema = &documented["content"]["application/json"]["schema"];
    let mut errs = Vec::new();
    if !schema.is_null() {
        validate(schema, body, "answer", &mut errs);
    }
    errs
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => {
            let parts: Vec<&str> = r.trim_start_matches("#/").split('/').collect();
            let mut v = root;
            for p in parts {
                v = &v[p];
            }
            resolve(root, v)
        }
        None => schema,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// A JSON Schema subset (OpenAPI 3.0 flavour) sufficient for GitHub's bodies.
pub fn validate(schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    validate_in(openapi(), schema, v, at, errs)
}

/// The same against another description (`root` resolves `$ref`s), e.g. Argo CD's swagger.
pub fn validate_in(root: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let schema = resolve(root, schema);
    if v.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(|a| a.as_array()) {
        for s in all {
            validate_in(root, s, v, at, errs);
        }
    }
    for (key, exactly_one) in [("anyOf", false), ("oneOf", true)] {
        if let Some(alts) = schema.get(key).and_then(|a| a.as_array()) {
            let passing = alts
                .iter()
                .filter(|s| {
                    let mut e = Vec::new();
                    validate_in(root, s, v, at, &mut e);
                    e.is_empty()
                })
                .count();
            if passing == 0 || (exactly_one && passing > 1) {
                errs.push(format!("{at}: matches {passing} of the {key} alternatives"));
            }
        }
    }
    match schema.get("type") {
        Some(Value::String(t)) if !type_ok(t, v) => {
            errs.push(format!("{at}: expected {t}, got {v}"));
            return;
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| t.as_str().is_some_and(|t| type_ok(t, v))) => {
            errs.push(format!("{at}: expected one of {ts:?}"));
            return;
        }
        _ => {}
    }
    if let Some(e) = schema.get("enum").and_then(|e| e.as_array())
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(|p| p.as_object());
        for r in schema.get("required").and_then(|r| r.as_array()).into_iter().flatten() {
            if let Some(r) = r.as_str()
                && !obj.contains_key(r)
            {
                errs.push(format!("{at}: missing required property `{r}`"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate_in(root, ps, val, &format!("{at}.{k}"), errs),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!("{at}: unknown property `{k}`")),
                    Some(s @ Value::Object(_)) => validate_in(root, s, val, &format!("{at}.{k}"), errs),
                    _ if props.is_some() && schema.get("additionalProperties").is_none() => {
                        // GitHub ignores unknown properties, but a typo would silently do nothing: refuse.
                        errs.push(format!("{at}: property `{k}` is not in the operation's schema"));
                    }
                    _ => {}
                },
            }
        }
    }
    if let Some(arr) = v.as_array() {
        if let Some(min) = schema.get("minItems").and_then(|m| m.as_u64())
            && (arr.len() as u64) < min
        {
            errs.push(format!("{at}: fewer than {min} items"));
        }
        if let Some(items) = schema.get("items") {
            for (i, x) in arr.iter().enumerate() {
                validate_in(root, items, x, &format!("{at}[{i}]"), errs);
            }
        }
    }
    if let Some(sv) = v.as_str()
        && let Some(min) = schema.get("minLength").and_then(|m| m.as_u64())
        && (sv.chars().count() as u64) < min
    {
        errs.push(format!("{at}: shorter than {min}"));
    }
}

// ---------------------------------------------------------------- GraphQL

pub struct Schema {
    pub types: HashMap<String, s::TypeDefinition<'static, String>>,
}

pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text: &'static str = Box::leak(
            std::fs::read_to_string(fixtures().join("schema.graphql"))
                .expect("schema")
                .into_boxed_str(),
        );
        let doc = graphql_parser::parse_schema::<String>(text).expect("GitHub schema parses");
        let mut types = HashMap::new();
        for d in doc.definitions {
            if let s::Definition::TypeDefinition(t) = d {
                let name = match &t {
                    s::TypeDefinition::Scalar(x) => x.name.clone(),
                    s::TypeDefinition::Object(x) => x.name.clone(),
                    s::TypeDefinition::Interface(x) => x.name.clone(),
                    s::TypeDefinition::Union(x) => x.name.clone(),
                    s::TypeDefinition::Enum(x) => x.name.clone(),
                    s::TypeDefinition::InputObject(x) => x.name.clone(),
                };
                types.insert(name, t);
            }
        }
        for builtin in ["String", "Int", "Float", "Boolean", "ID"] {
            types
                .entry(builtin.to_string())
                .or_insert_with(|| s::TypeDefinition::Scalar(s::ScalarType::new(builtin.to_string())));
        }
        Schema { types }
    })
}

fn named<'a>(t: &'a s::Type<'static, String>) -> &'a str {
    match t {
        s::Type::NamedType(n) => n,
        s::Type::ListType(i) | s::Type::NonNullType(i) => named(i),
    }
}

impl Schema {
    fn fields(&self, ty: &str) -> Option<&Vec<s::Field<'static, String>>> {
        match self.types.get(ty)? {
            s::TypeDefinition::Object(o) => Some(&o.fields),
            s::TypeDefinition::Interface(i) => Some(&i.fields),
            _ => None,
        }
    }

    fn is_composite(&self, ty: &str) -> bool {
        matches!(
            self.types.get(ty),
            Some(s::TypeDefinition::Object(_) | s::TypeDefinition::Interface(_) | s::TypeDefinition::Union(_))
        )
    }

    fn is_input(&self, ty: &str) -> bool {
        matches!(
            self.types.get(ty),
            Some(s::TypeDefinition::Scalar(_) | s::TypeDefinition::Enum(_) | s::TypeDefinition::InputObject(_))
        )
    }

    /// Checks a JSON value against an input type (variables).
    fn check_input(&self, t: &s::Type<'static, String>, v: &Value, at: &str, errs: &mut Vec<String>) {
        match t {
            s::Type::NonNullType(inner) => {
                if v.is_null() {
                    errs.push(format!("{at}: null for non-null {}", named(inner)));
                } else {
                    self.check_input(inner, v, at, errs);
                }
            }
            _ if v.is_null() => {}
            s::Type::ListType(inner) => match v.as_array() {
                Some(a) => a
                    .iter()
                    .enumerate()
                    .for_each(|(i, x)| self.check_input(inner, x, &format!("{at}[{i}]"), errs)),
                None => self.check_input(inner, v, at, errs),
            },
            s::Type::NamedType(n) => match self.types.get(n.as_str()) {
                Some(s::TypeDefinition::InputObject(io)) => {
                    let Some(obj) = v.as_object() else {
                        errs.push(format!("{at}: expected input object {n}"));
                        return;
                    };
                    for k in obj.keys() {
                        if !io.fields.iter().any(|f| f.name == *k) {
                            errs.push(format!("{at}: {n} has no field `{k}`"));
                        }
                    }
                    for f in &io.fields {
                        let val = obj.get(&f.name).unwrap_or(&Value::Null);
                        if matches!(f.value_type, s::Type::NonNullType(_))
                            && f.default_value.is_none()
                            && !obj.contains_key(&f.name)
                        {
                            errs.push(format!("{at}: {n}.{} is required", f.name));
                        } else if obj.contains_key(&f.name) {
                            self.check_input(&f.value_type, val, &format!("{at}.{}", f.name), errs);
                        }
                    }
                }
                Some(s::TypeDefinition::Enum(e)) => {
                    if !v.as_str().is_some_and(|x| e.values.iter().any(|ev| ev.name == x)) {
                        errs.push(format!("{at}: {v} is not a value of enum {n}"));
                    }
                }
                Some(s::TypeDefinition::Scalar(_)) => {
                    let ok = match n.as_str() {
                        "Int" => v.is_i64() || v.is_u64(),
                        "Float" => v.is_number(),
                        "Boolean" => v.is_boolean(),
                        _ => v.is_string(),
                    };
                    if !ok {
                        errs.push(format!("{at}: {v} is not a {n}"));
                    }
                }
                _ => errs.push(format!("{at}: {n} is not an input type")),
            },
        }
    }
}

fn literal(v: &q::Value<'static, String>, vars: &Value) -> Value {
    match v {
        q::Value::Variable(n) => vars.get(n.as_str()).cloned().unwrap_or(Value::Null),
        q::Value::Int(i) => Value::from(i.as_i64().unwrap_or_default()),
        q::Value::Float(f) => Value::from(*f),
        q::Value::String(s) => Value::from(s.clone()),
        q::Value::Boolean(b) => Value::from(*b),
        q::Value::Null => Value::Null,
        q::Value::Enum(e) => Value::from(e.clone()),
        q::Value::List(l) => Value::Array(l.iter().map(|x| literal(x, vars)).collect()),
        q::Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), literal(x, vars))).collect()),
    }
}

pub fn arg_value(args: &[(String, q::Value<'static, String>)], name: &str, vars: &Value) -> Value {
    args.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| literal(v, vars))
        .unwrap_or(Value::Null)
}

fn used_vars(v: &q::Value<'static, String>, out: &mut Vec<String>) {
    match v {
        q::Value::Variable(n) => out.push(n.clone()),
        q::Value::List(l) => l.iter().for_each(|x| used_vars(x, out)),
        q::Value::Object(o) => o.values().for_each(|x| used_vars(x, out)),
        _ => {}
    }
}

pub struct Parsed {
    pub op: q::OperationDefinition<'static, String>,
    pub fragments: HashMap<String, q::FragmentDefinition<'static, String>>,
}

/// Parses and validates a GraphQL request as GitHub would; Ok(operation) or the errors.
pub fn check_graphql(query: &str, vars: &Value) -> Result<Parsed, Vec<String>> {
    let text: &'static str = Box::leak(query.to_string().into_boxed_str());
    let doc = graphql_parser::parse_query::<String>(text).map_err(|e| vec![format!("parse error: {e}")])?;
    let sch = schema();
    let mut ops = Vec::new();
    let mut fragments = HashMap::new();
    for d in doc.definitions {
        match d {
            q::Definition::Operation(o) => ops.push(o),
            q::Definition::Fragment(f) => {
                fragments.insert(f.name.clone(), f);
            }
        }
    }
    if ops.len() != 1 {
        return Err(vec![format!("expected exactly one operation, got {}", ops.len())]);
    }
    let op = ops.remove(0);
    let (root, var_defs, sel) = match &op {
        q::OperationDefinition::Query(x) => ("Query", x.variable_definitions.clone(), x.selection_set.clone()),
        q::OperationDefinition::Mutation(x) => ("Mutation", x.variable_definitions.clone(), x.selection_set.clone()),
        q::OperationDefinition::SelectionSet(x) => ("Query", Vec::new(), x.clone()),
        q::OperationDefinition::Subscription(_) => return Err(vec!["subscriptions are not supported".into()]),
    };
    let mut errs = Vec::new();
    let mut declared = Vec::new();
    for vd in &var_defs {
        if !sch.is_input(named(&vd.var_type)) {
            errs.push(format!(
                "variable ${}: {} is not an input type",
                vd.name,
                named(&vd.var_type)
            ));
        }
        let given = vars.get(&vd.name);
        match given {
            None if matches!(vd.var_type, s::Type::NonNullType(_)) && vd.default_value.is_none() => {
                errs.push(format!(
                    "variable ${} of type {} was not provided",
                    vd.name,
                    named(&vd.var_type)
                ));
            }
            Some(v) => sch.check_input(&vd.var_type, v, &format!("${}", vd.name), &mut errs),
            None => {}
        }
        declared.push(vd.name.clone());
    }
    if let Some(obj) = vars.as_object() {
        for k in obj.keys() {
            if !declared.contains(k) {
                errs.push(format!("variable ${k} is given but not declared"));
            }
        }
    }
    let mut used = Vec::new();
    check_selection(sch, root, &sel, &fragments, &mut used, &mut errs);
    for d in &declared {
        if !used.contains(d) {
            errs.push(format!("variable ${d} is declared but never used"));
        }
    }
    for u in &used {
        if !declared.contains(u) {
            errs.push(format!("variable ${u} is not defined"));
        }
    }
    if errs.is_empty() {
        Ok(Parsed { op, fragments })
    } else {
        Err(errs)
    }
}

fn check_selection(
    sch: &Schema,
    ty: &str,
    sel: &q::SelectionSet<'static, String>,
    frags: &HashMap<String, q::FragmentDefinition<'static, String>>,
    used: &mut Vec<String>,
    errs: &mut Vec<String>,
) {
    for item in &sel.items {
        let dirs = match item {
            q::Selection::Field(f) => &f.directives,
            q::Selection::InlineFragment(fr) => &fr.directives,
            q::Selection::FragmentSpread(sp) => &sp.directives,
        };
        for d in dirs {
            if d.name != "skip" && d.name != "include" {
                errs.push(format!("unknown directive @{}", d.name));
            }
            for (an, av) in &d.arguments {
                if an != "if" {
                    errs.push(format!("directive @{} has no argument `{an}`", d.name));
                }
                used_vars(av, used);
            }
        }
        match item {
            q::Selection::Field(f) => {
                if f.name == "__typename" {
                    continue;
                }
                let Some(def) = sch.fields(ty).and_then(|fs| fs.iter().find(|d| d.name == f.name)) else {
                    errs.push(format!("field `{}` does not exist on type {ty}", f.name));
                    continue;
                };
                for (an, av) in &f.arguments {
                    match def.arguments.iter().find(|a| a.name == *an) {
                        None => errs.push(format!("field {ty}.{} has no argument `{an}`", f.name)),
                        Some(a) => {
                            used_vars(av, used);
                            if !matches!(av, q::Value::Variable(_)) {
                                let mut e = Vec::new();
                                sch.check_input(
                                    &a.value_type,
                                    &literal(av, &Value::Null),
                                    &format!("{ty}.{}({an})", f.name),
                                    &mut e,
                                );
                                errs.extend(e);
                            }
                        }
                    }
                }
                for a in &def.arguments {
                    if matches!(a.value_type, s::Type::NonNullType(_))
                        && a.default_value.is_none()
                        && !f.arguments.iter().any(|(n, _)| *n == a.name)
                    {
                        errs.push(format!("field {ty}.{} requires argument `{}`", f.name, a.name));
                    }
                }
                let inner = named(&def.field_type);
                if sch.is_composite(inner) {
                    if f.selection_set.items.is_empty() {
                        errs.push(format!("field {ty}.{} of type {inner} needs a selection set", f.name));
                    }
                    check_selection(sch, inner, &f.selection_set, frags, used, errs);
                } else if !f.selection_set.items.is_empty() {
                    errs.push(format!("field {ty}.{} is a {inner} and takes no selection set", f.name));
                }
            }
            q::Selection::InlineFragment(fr) => {
                let target = match &fr.type_condition {
                    Some(q::TypeCondition::On(t)) => t.as_str(),
                    None => ty,
                };
                if !sch.is_composite(target) {
                    errs.push(format!("fragment on unknown or non-composite type {target}"));
                    continue;
                }
                check_selection(sch, target, &fr.selection_set, frags, used, errs);
            }
            q::Selection::FragmentSpread(sp) => match frags.get(&sp.fragment_name) {
                Some(fd) => {
                    let q::TypeCondition::On(t) = &fd.type_condition;
                    check_selection(sch, t, &fd.selection_set, frags, used, errs);
                }
                None => errs.push(format!("unknown fragment {}", sp.fragment_name)),
            },
        }
    }
}

// ------------------------------------------------------- GraphQL answers

/// Checks a GraphQL answer against the document it answers and GitHub's schema, as
/// GitHub's executor would have shaped it: exactly the selected response keys (aliases,
/// fragments and their type conditions, `@skip`/`@include`), scalars of their type,
/// enums among their values, no null for a non-null field, lists as arrays, and the
/// concrete type of an interface or union from `__typename` (or from the keys). `data`
/// may be null, or absent, only with `errors`. Each mismatch names its path in the
/// answer (`data.repository.refs.nodes[3].target.oid`) and what was expected.
pub fn check_graphql_answer(parsed: &Parsed, vars: &Value, answer: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let Some(obj) = answer.as_object() else {
        return vec![format!("answer: expected a JSON object, got {}", brief(answer))];
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "data" | "errors" | "extensions") {
            errs.push(format!("answer: unexpected top-level key `{k}`"));
        }
    }
    let has_errors = match obj.get("errors") {
        None => false,
        Some(Value::Array(a)) if !a.is_empty() => {
            for (i, e) in a.iter().enumerate() {
                if !e.get("message").is_some_and(Value::is_string) {
                    errs.push(format!("errors[{i}]: expected an object with a string `message`"));
                }
            }
            true
        }
        Some(other) => {
            errs.push(format!("errors: expected a non-empty list, got {}", brief(other)));
            false
        }
    };
    let (root, sel) = match &parsed.op {
        q::OperationDefinition::Query(x) => ("Query", &x.selection_set),
        q::OperationDefinition::Mutation(x) => ("Mutation", &x.selection_set),
        q::OperationDefinition::SelectionSet(x) => ("Query", x),
        q::OperationDefinition::Subscription(_) => return errs,
    };
    match obj.get("data") {
        None | Some(Value::Null) if has_errors => {}
        None => errs.push("data: missing, and there are no errors".into()),
        Some(Value::Null) => errs.push("data: null, and there are no errors".into()),
        Some(d) => {
            let ck = AnswerCheck {
                sch: schema(),
                frags: &parsed.fragments,
                vars,
            };
            ck.object(root, &[sel], d, "data", &mut errs);
        }
    }
    errs
}

/// `@skip(if: true)` or `@include(if: false)` leaves a selection out.
pub fn included(dirs: &[q::Directive<'static, String>], vars: &Value) -> bool {
    dirs.iter().all(|d| match d.name.as_str() {
        "skip" => arg_value(&d.arguments, "if", vars) != Value::Bool(true),
        "include" => arg_value(&d.arguments, "if", vars) != Value::Bool(false),
        _ => true,
    })
}

/// A value in a message: its JSON, shortened.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn show(t: &s::Type<'static, String>) -> String {
    match t {
        s::Type::NamedType(n) => n.clone(),
        s::Type::ListType(i) => format!("[{}]", show(i)),
        s::Type::NonNullType(i) => format!("{}!", show(i)),
    }
}

type Sel = q::SelectionSet<'static, String>;
type QField = q::Field<'static, String>;

struct AnswerCheck<'p> {
    sch: &'p Schema,
    frags: &'p HashMap<String, q::FragmentDefinition<'static, String>>,
    vars: &'p Value,
}

impl<'p> AnswerCheck<'p> {
    fn included(&self, dirs: &[q::Directive<'static, String>]) -> bool {
        included(dirs, self.vars)
    }

    /// Whether a fragment on `cond` applies to an object of the concrete type `ty`.
    fn applies(&self, cond: &str, ty: &str) -> bool {
        cond == ty
            || match self.sch.types.get(cond) {
                Some(s::TypeDefinition::Interface(_)) => matches!(
                    self.sch.types.get(ty),
                    Some(s::TypeDefinition::Object(o)) if o.implements_interfaces.iter().any(|i| i == cond)
                ),
                Some(s::TypeDefinition::Union(u)) => u.types.iter().any(|m| m == ty),
                _ => false,
            }
    }

    /// The fields selected on an object of concrete type `ty`, grouped by response key
    /// in document order (the spec's CollectFields).
    fn collect(&self, ty: &str, sel: &'p Sel, out: &mut Vec<(String, Vec<&'p QField>)>, seen: &mut Vec<String>) {
        for item in &sel.items {
            match item {
                q::Selection::Field(f) if self.included(&f.directives) => {
                    let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, group)) => group.push(f),
                        None => out.push((key, vec![f])),
                    }
                }
                q::Selection::Field(_) => {}
                q::Selection::InlineFragment(fr) => {
                    let applies = match &fr.type_condition {
                        Some(q::TypeCondition::On(t)) => self.applies(t, ty),
                        None => true,
                    };
                    if applies && self.included(&fr.directives) {
                        self.collect(ty, &fr.selection_set, out, seen);
                    }
                }
                q::Selection::FragmentSpread(sp) => {
                    if seen.contains(&sp.fragment_name) || !self.included(&sp.directives) {
                        continue;
                    }
                    if let Some(fd) = self.frags.get(&sp.fragment_name) {
                        let q::TypeCondition::On(t) = &fd.type_condition;
                        if self.applies(t, ty) {
                            seen.push(sp.fragment_name.clone());
                            self.collect(ty, &fd.selection_set, out, seen);
                        }
                    }
                }
            }
        }
    }

    fn grouped(&self, ty: &str, sels: &[&'p Sel]) -> Vec<(String, Vec<&'p QField>)> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for sel in sels {
            self.collect(ty, sel, &mut out, &mut seen);
        }
        out
    }

    fn value(&self, t: &s::Type<'static, String>, sels: &[&'p Sel], v: &Value, at: &str, errs: &mut Vec<String>) {
        match t {
            s::Type::NonNullType(inner) => {
                if v.is_null() {
                    errs.push(format!("{at}: null, but the field is non-null ({})", show(t)));
                } else {
                    self.value(inner, sels, v, at, errs);
                }
            }
            _ if v.is_null() => {}
            s::Type::ListType(inner) => match v.as_array() {
                Some(a) => {
                    for (i, x) in a.iter().enumerate() {
                        self.value(inner, sels, x, &format!("{at}[{i}]"), errs);
                    }
                }
                None => errs.push(format!("{at}: expected a list {}, got {}", show(t), brief(v))),
            },
            s::Type::NamedType(n) => match self.sch.types.get(n.as_str()) {
                Some(s::TypeDefinition::Scalar(_)) => {
                    if let Err(expected) = scalar_ok(n, v) {
                        errs.push(format!("{at}: expected {expected}, got {}", brief(v)));
                    }
                }
                Some(s::TypeDefinition::Enum(e)) => {
                    if !v.as_str().is_some_and(|x| e.values.iter().any(|ev| ev.name == x)) {
                        let values: Vec<&str> = e.values.iter().map(|ev| ev.name.as_str()).collect();
                        errs.push(format!(
                            "{at}: expected a value of enum {n} ({}), got {}",
                            values.join(", "),
                            brief(v)
                        ));
                    }
                }
                Some(s::TypeDefinition::Object(_)) => self.object(n, sels, v, at, errs),
                Some(s::TypeDefinition::Interface(_) | s::TypeDefinition::Union(_)) => {
                    self.abstract_value(n, sels, v, at, errs)
                }
                _ => errs.push(format!("{at}: {n} is not an output type of GitHub's schema")),
            },
        }
    }

    /// An object of the concrete type `ty`: exactly the selected keys, each of its type.
    fn object(&self, ty: &str, sels: &[&'p Sel], v: &Value, at: &str, errs: &mut Vec<String>) {
        let Some(m) = v.as_object() else {
            errs.push(format!("{at}: expected an object ({ty}), got {}", brief(v)));
            return;
        };
        let fields = self.grouped(ty, sels);
        for k in m.keys() {
            if !fields.iter().any(|(key, _)| key == k) {
                errs.push(format!("{at}.{k}: not selected on {ty}, yet in the answer"));
            }
        }
        for (key, group) in &fields {
            let name = group[0].name.as_str();
            let path = format!("{at}.{key}");
            let Some(val) = m.get(key) else {
                errs.push(format!("{path}: missing, though selected ({ty}.{name})"));
                continue;
            };
            if name == "__typename" {
                if val.as_str() != Some(ty) {
                    errs.push(format!("{path}: expected \"{ty}\", got {}", brief(val)));
                }
                continue;
            }
            let Some(def) = self.sch.fields(ty).and_then(|fs| fs.iter().find(|d| d.name == name)) else {
                errs.push(format!("{path}: {ty} has no field `{name}`"));
                continue;
            };
            let subs: Vec<&'p Sel> = group.iter().map(|f| &f.selection_set).collect();
            self.value(&def.field_type, &subs, val, &path, errs);
        }
    }

    /// The object types an interface or union may be.
    fn possible(&self, n: &str) -> Vec<String> {
        match self.sch.types.get(n) {
            Some(s::TypeDefinition::Union(u)) => u.types.clone(),
            Some(s::TypeDefinition::Interface(_)) => {
                let mut v: Vec<String> = self
                    .sch
                    .types
                    .values()
                    .filter_map(|t| match t {
                        s::TypeDefinition::Object(o) if o.implements_interfaces.iter().any(|i| i == n) => {
                            Some(o.name.clone())
                        }
                        _ => None,
                    })
                    .collect();
                v.sort();
                v
            }
            _ => Vec::new(),
        }
    }

    /// A value of an interface or union: checked as its concrete type, named by
    /// `__typename` when the answer has it, else the possible type its keys fit.
    fn abstract_value(&self, n: &str, sels: &[&'p Sel], v: &Value, at: &str, errs: &mut Vec<String>) {
        let Some(m) = v.as_object() else {
            errs.push(format!("{at}: expected an object ({n}), got {}", brief(v)));
            return;
        };
        let possible = self.possible(n);
        if let Some(tn) = m.get("__typename").and_then(Value::as_str) {
            if possible.iter().any(|p| p == tn) {
                self.object(tn, sels, v, at, errs);
            } else {
                errs.push(format!("{at}.__typename: {tn} is not a type {n} can be"));
            }
            return;
        }
        // Types whose selection has exactly the answer's keys first; failing all, the
        // type the answer comes closest to, to name what is missing or mistyped.
        let fits = |ty: &String| {
            let keys = self.grouped(ty, sels);
            keys.len() == m.len() && keys.iter().all(|(k, _)| m.contains_key(k))
        };
        let mut best: Option<(String, Vec<String>)> = None;
        for ty in possible
            .iter()
            .filter(|t| fits(t))
            .chain(possible.iter().filter(|t| !fits(t)))
        {
            let mut e = Vec::new();
            self.object(ty, sels, v, at, &mut e);
            if e.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|(_, b)| e.len() < b.len()) {
                best = Some((ty.clone(), e));
            }
        }
        match best {
            Some((ty, e)) => {
                errs.push(format!("{at}: fits no type {n} can be; closest is {ty}:"));
                errs.extend(e);
            }
            None => errs.push(format!("{at}: {n} has no possible types")),
        }
    }
}

/// How a scalar is written in an answer: Ok, or what was expected.
fn scalar_ok(n: &str, v: &Value) -> Result<(), String> {
    let ok = match n {
        "Int" => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        "Float" => v.is_number(),
        "Boolean" => v.is_boolean(),
        "GitObjectID" => v
            .as_str()
            .is_some_and(|x| x.len() == 40 && x.bytes().all(|b| b.is_ascii_hexdigit())),
        // String, ID and GitHub's own scalars (URI, GitTimestamp, DateTime, HTML, ...).
        _ => v.is_string(),
    };
    match (ok, n) {
        (true, _) => Ok(()),
        (false, "Int") => Err("an Int (a 32-bit integer)".into()),
        (false, "Float") => Err("a Float (a number)".into()),
        (false, "Boolean") => Err("a Boolean (true or false)".into()),
        (false, "GitObjectID") => Err("a GitObjectID (a string of 40 hex digits)".into()),
        (false, other) => Err(format!("a {other} (a string)")),
    }
}
