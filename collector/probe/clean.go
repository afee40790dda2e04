package probe

import (
	"reflect"
	"strings"
	"unicode"

	"github.com/edgesync/edgesync/collector/record"
)

// clean makes s acceptable to record.Validate: valid UTF-8 without control
// characters (a DMI string or utmp entry can hold either).
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// cleanInventory cleans every string in inv, however deep, so a field added
// to record.Inventory is cleaned without anyone remembering to list it.
func cleanInventory(inv *record.Inventory) {
	cleanValue(reflect.ValueOf(inv).Elem())
}

func cleanValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(clean(v.String()))
	case reflect.Struct:
		for i := range v.NumField() {
			cleanValue(v.Field(i))
		}
	case reflect.Slice:
		for i := range v.Len() {
			cleanValue(v.Index(i))
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return
		}
		m := make(map[string]string, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[clean(it.Key().String())] = clean(it.Value().String())
		}
		v.Clear()
		for k, s := range m {
			v.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(s))
		}
	}
}
