package console

import (
	"context"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	"github.com/edgesync/edgesync/internal/websession"
)

// The two-step enrolment pages: start, scan the QR code, confirm a first
// code, note the recovery codes.

type totpView struct {
	Step     string // start, scan, done
	QR       template.URL
	Secret   string
	Recovery []string
}

func (c *Console) totpPage(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	c.render(w, http.StatusOK, "totp", page{Title: "Two-step sign-in", Nav: "totp", CSRF: s.CSRF, Data: totpView{Step: "start"}})
}

func (c *Console) totpBegin(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	e, err := c.cfg.Source.BeginTOTP(ctx)
	if err != nil {
		c.audit(r, s.Who, "begin two-step enrolment", "failed: "+err.Error())
		c.render(w, http.StatusBadRequest, "totp", page{Title: "Two-step sign-in", Nav: "totp", CSRF: s.CSRF, Data: totpView{Step: "start"}, Error: err.Error()})
		return
	}
	c.audit(r, s.Who, "begin two-step enrolment", "ok")
	v := totpView{Step: "scan", Secret: e.Secret, QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG))}
	c.render(w, http.StatusOK, "totp", page{Title: "Two-step sign-in", Nav: "totp", CSRF: s.CSRF, Data: v})
}

func (c *Console) totpConfirm(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	codes, err := c.cfg.Source.ConfirmTOTP(ctx, r.PostFormValue("code"))
	if err != nil {
		c.audit(r, s.Who, "confirm two-step enrolment", "refused: "+err.Error())
		c.render(w, http.StatusBadRequest, "totp", page{Title: "Two-step sign-in", Nav: "totp", CSRF: s.CSRF, Data: totpView{Step: "start"}, Error: "That code is not right: start again."})
		return
	}
	c.audit(r, s.Who, "confirm two-step enrolment", "ok")
	c.render(w, http.StatusOK, "totp", page{Title: "Two-step sign-in", Nav: "totp", CSRF: s.CSRF, Data: totpView{Step: "done", Recovery: codes}})
}
