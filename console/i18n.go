package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

// Languages the console speaks, the first is the fallback.
var languages = []string{"en", "ja"}

var langMatcher = language.NewMatcher([]language.Tag{language.English, language.Japanese})

// catalog is every console text by language, then key. Texts may hold
// {name} placeholders.
type catalog map[string]map[string]string

func loadCatalog() (catalog, error) {
	c := catalog{}
	for _, lang := range languages {
		b, err := assets.ReadFile("assets/i18n/" + lang + ".json")
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("console: assets/i18n/%s.json: %w", lang, err)
		}
		c[lang] = m
	}
	// Every text in every language.
	for _, lang := range languages {
		for k := range c[languages[0]] {
			if strings.TrimSpace(c[lang][k]) == "" {
				return nil, fmt.Errorf("console: text %q has no %s version", k, lang)
			}
		}
		for k := range c[lang] {
			if _, ok := c[languages[0]][k]; !ok {
				return nil, fmt.Errorf("console: text %q exists in %s only", k, lang)
			}
		}
	}
	return c, nil
}

// text returns key in lang with {name} placeholders filled from
// name, value pairs. A missing key shows as itself (the catalog test
// makes sure there are none).
func (c catalog) text(lang, key string, args ...string) string {
	s, ok := c[lang][key]
	if !ok {
		if s, ok = c[languages[0]][key]; !ok {
			return key
		}
	}
	for i := 0; i+1 < len(args); i += 2 {
		s = strings.ReplaceAll(s, "{"+args[i]+"}", args[i+1])
	}
	return s
}

// keys returns every key, sorted.
func (c catalog) keys() []string {
	out := make([]string, 0, len(c[languages[0]]))
	for k := range c[languages[0]] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// langCookie remembers the language the user chose.
const langCookie = "popbridge_lang"

// pickLang chooses the language: the one the user chose, else the
// browser's Accept-Language, else English.
func pickLang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && validLang(c.Value) {
		return c.Value
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return languages[0]
	}
	_, i, conf := langMatcher.Match(tags...)
	if conf == language.No {
		return languages[0]
	}
	return languages[i]
}

func validLang(l string) bool {
	for _, x := range languages {
		if x == l {
			return true
		}
	}
	return false
}
