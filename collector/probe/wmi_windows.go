//go:build windows

package probe

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"

	"github.com/go-ole/go-ole"
	"github.com/go-ole/go-ole/oleutil"
)

// wmiQuery runs a WQL query through the WbemScripting COM objects and
// appends one S per row to dst (*[]S). Each exported field of S is read
// from the property of the same name through SWbemObject.Properties_; a
// property the class lacks (older Windows, Wine) or a NULL leaves the field
// at its zero value.
//
// It reads Properties_ rather than the object's own dispatch names (what
// github.com/yusufpapurcu/wmi does): Windows answers both, Wine's wbemdisp
// only the first, and the Wine run is how this code is tested.
func wmiQuery(query, namespace string, dst any) (err error) {
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.Elem().Kind() != reflect.Slice || dv.Elem().Type().Elem().Kind() != reflect.Struct {
		return fmt.Errorf("wmi: dst is %T, want *[]struct", dst)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := ole.CoInitializeEx(0, ole.COINIT_MULTITHREADED); err != nil {
		var oe *ole.OleError
		// S_FALSE: COM was already initialised on this thread.
		if !errors.As(err, &oe) || oe.Code() != 1 {
			return fmt.Errorf("wmi: CoInitializeEx: %w", err)
		}
	}
	defer ole.CoUninitialize()

	unk, err := oleutil.CreateObject("WbemScripting.SWbemLocator")
	if err != nil {
		return fmt.Errorf("wmi: SWbemLocator: %w", err)
	}
	defer unk.Release()
	loc, err := unk.QueryInterface(ole.IID_IDispatch)
	if err != nil {
		return fmt.Errorf("wmi: SWbemLocator: %w", err)
	}
	defer loc.Release()
	if namespace == "" {
		namespace = `root\cimv2`
	}
	sv, err := oleutil.CallMethod(loc, "ConnectServer", ".", namespace)
	if err != nil {
		return fmt.Errorf("wmi: connect %s: %w", namespace, err)
	}
	services := sv.ToIDispatch()
	defer services.Release()
	rv, err := oleutil.CallMethod(services, "ExecQuery", query)
	if err != nil {
		return fmt.Errorf("wmi: %s: %w", query, err)
	}
	rows := rv.ToIDispatch()
	defer rows.Release()

	slice := dv.Elem()
	typ := slice.Type().Elem()
	return oleutil.ForEach(rows, func(v *ole.VARIANT) error {
		item := v.ToIDispatch()
		if item == nil {
			return nil
		}
		pv, err := oleutil.GetProperty(item, "Properties_")
		if err != nil {
			return fmt.Errorf("wmi: Properties_: %w", err)
		}
		props := pv.ToIDispatch()
		defer props.Release()
		row := reflect.New(typ).Elem()
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			p, err := oleutil.CallMethod(props, "Item", f.Name)
			if err != nil {
				continue // the class has no such property here
			}
			prop := p.ToIDispatch()
			val, err := oleutil.GetProperty(prop, "Value")
			prop.Release()
			if err != nil {
				continue
			}
			setField(row.Field(i), val.Value())
			val.Clear()
		}
		slice.Set(reflect.Append(slice, row))
		return nil
	})
}

// setField stores a WMI value: uint64 properties arrive as strings, other
// integers as any integer type; a value of another kind is skipped.
func setField(f reflect.Value, v any) {
	switch x := v.(type) {
	case nil:
	case string:
		switch f.Kind() {
		case reflect.String:
			f.SetString(x)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if n, err := strconv.ParseUint(x, 10, 64); err == nil {
				f.SetUint(n)
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if n, err := strconv.ParseInt(x, 10, 64); err == nil {
				f.SetInt(n)
			}
		}
	case bool:
		if f.Kind() == reflect.Bool {
			f.SetBool(x)
		}
	default:
		rv := reflect.ValueOf(v)
		switch {
		case rv.CanInt() && f.CanUint():
			if rv.Int() >= 0 {
				f.SetUint(uint64(rv.Int()))
			}
		case rv.CanInt() && f.CanInt():
			f.SetInt(rv.Int())
		case rv.CanUint() && f.CanUint():
			f.SetUint(rv.Uint())
		case rv.CanUint() && f.CanInt():
			f.SetInt(int64(rv.Uint()))
		}
	}
}
