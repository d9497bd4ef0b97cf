use super::*;

fn rules(text: &str) -> Vec<String> {
    SslPrincipalMapper::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).describe()
}

#[test]
fn the_forms_kafka_accepts() {
    for text in [
        "DEFAULT",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
        "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
        "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
        "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
    ] {
        assert!(SslPrincipalMapper::parse(text).is_ok(), "{text}");
    }
}

#[test]
fn the_forms_kafka_refuses() {
    for text in [
        "default",
        "DEFAUL",
        "DEFAULT/L",
        "DEFAULT/U",
        "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
        "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        "DEFAULT, RULE:a/b/X",
    ] {
        let err = SslPrincipalMapper::parse(text).unwrap_err();
        assert!(matches!(err, RuleError::Syntax { .. }), "{text}: {err}");
    }
}

#[test]
fn names_from_a_list_of_rules() {
    let mapper = SslPrincipalMapper::parse(
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, \
         RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, \
         RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, \
         RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, \
         DEFAULT",
    )
    .unwrap();
    let name = |dn: &str| mapper.name_for(dn).unwrap();
    assert_eq!(name("CN=Duke,OU=ServiceUsers,O=Org,C=US"), "duke");
    assert_eq!(name("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US"), "duke@sme");
    assert_eq!(name("cn=duke,ou=sme,dc=mycp,dc=com"), "DUKE@SME");
    assert_eq!(name("cN=duke,OU=JavaSoft,O=Sun Microsystems"), "DUKE");
    assert_eq!(name("OU=JavaSoft,O=Sun Microsystems,C=US"), "OU=JavaSoft,O=Sun Microsystems,C=US");
}

#[test]
fn splitting_keeps_commas_inside_rules_and_skips_blank_entries() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("DEFAULT", &["DEFAULT"]),
        ("RULE://", &["RULE:/"]),
        ("RULE:/.*/", &["RULE:/.*"]),
        ("RULE:/.*/L", &["RULE:/.*/L"]),
        ("RULE://,DEFAULT", &["RULE:/", "DEFAULT"]),
        ("  RULE:// ,  DEFAULT  ", &["RULE:/", "DEFAULT"]),
        ("  RULE:   /     / ,  DEFAULT  ", &["RULE:   /     ", "DEFAULT"]),
        ("  RULE:  /     /U   ,DEFAULT  ", &["RULE:  /     /U", "DEFAULT"]),
        (
            "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ",
            &["RULE:([A-Z]*)/$1/U", "RULE:([a-z]+)/$1", "DEFAULT"],
        ),
        (",   , , ,      , , ,   ", &[]),
        (",,RULE://,,,DEFAULT,,", &["RULE:/", "DEFAULT"]),
        (",  , RULE: /   /    ,,,   DEFAULT, ,   ", &["RULE: /   ", "DEFAULT"]),
        ("     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,", &["RULE:   /  /U", "DEFAULT"]),
        // Backslashes escape slashes and each other.
        (r"RULE:\/\\\(\)\n\t/\/\//", &[r"RULE:\/\\\(\)\n\t/\/\/"]),
        (r"RULE:\**\/+/*/L,RULE:\/*\**/**/", &[r"RULE:\**\/+/*/L", r"RULE:\/*\**/**"]),
        // A rule runs to the first comma after its flag, whatever the pattern holds.
        (
            r"RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT",
            &[
                r"RULE:,RULE:,/,RULE:,\//U",
                "RULE:,/RULE:,",
                "RULE:,RULE:,/L,RULE:,/L",
                "RULE:, DEFAULT, /DEFAULT",
                "DEFAULT",
            ],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(rules(text), *want, "{text:?}");
    }
}

#[test]
fn escaped_commas_in_names() {
    let mapper = SslPrincipalMapper::parse(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT").unwrap();
    assert_eq!(mapper.name_for(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz").unwrap(), r"Tkac\, Adam");
}

#[test]
fn replacement_semantics_follow_java() {
    let name = |rules: &str, dn: &str| SslPrincipalMapper::parse(rules).unwrap().name_for(dn);
    // Every match is replaced, the empty one at the end included.
    assert_eq!(name("RULE:(.*)/x$1/", "abc").as_deref(), Some("xabcx"));
    assert_eq!(name("RULE:^(.*)$/x$1/", "abc").as_deref(), Some("xabc"));
    // A group the pattern lacks is literal text; digits extend a reference while they name a group.
    assert_eq!(name("RULE:^CN=(.*)$/$1@$4/", "CN=a").as_deref(), Some("a@$4"));
    assert_eq!(name("RULE:^CN=(.*)$/$12/", "CN=a").as_deref(), Some("a2"));
    assert_eq!(name("RULE:^CN=(.*)$/$0!/", "CN=a").as_deref(), Some("CN=a!"));
    assert_eq!(name(r"RULE:^CN=(.*)$/\$1 \\ $1/", "CN=a").as_deref(), Some(r"$1 \ a"));
    assert_eq!(name("RULE:^CN=(?P<user>[^,]*).*$/${user}/U", "CN=bob,O=x").as_deref(), Some("BOB"));
    // A group that took no part in the match adds nothing.
    assert_eq!(name("RULE:^(a)?b$/[$1]/", "b").as_deref(), Some("[]"));
    // The pattern must match the whole name.
    assert_eq!(name("RULE:CN=([a-z]+)/$1/", "CN=ab,O=x"), None);
    assert_eq!(name("", "CN=x"), None, "no rules: nothing applies");
}

#[test]
fn unusable_rules_are_errors_naming_them() {
    let err = |text: &str| SslPrincipalMapper::parse(text).unwrap_err();
    assert!(matches!(err("RULE:^(?=CN).*$/x/"), RuleError::Pattern { .. }), "look-ahead");
    assert!(matches!(err("RULE:(unclosed/x/"), RuleError::Pattern { .. }));
    assert!(matches!(err("RULE:a)(b/x/"), RuleError::Pattern { .. }), "not rescued by the anchoring group");
    assert!(matches!(err("RULE:^CN=.*$/$1/"), RuleError::Replacement { .. }), "no groups");
    assert!(matches!(err("RULE:^CN=(.*)$/$x/"), RuleError::Replacement { .. }));
    assert!(matches!(err("RULE:^CN=(.*)$/${nope}/"), RuleError::Replacement { .. }));
    assert!(err("RULE:^CN=(.*)$/$x/, DEFAULT").to_string().contains("RULE:^CN=(.*)$/$x/"));
}
