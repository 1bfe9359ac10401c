package tracker

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
)

// deviceChannels are the channels devices chose themselves (the plugin's
// setChannel), by app and device, kept in memory and in the tracker state.
type deviceChannels struct {
	mu sync.RWMutex
	m  map[string]string // app "\x00" device -> channel
}

func loadDeviceChannels(st state.State) (*deviceChannels, error) {
	d := &deviceChannels{m: map[string]string{}}
	err := st.Channels(context.Background(), func(app, device, channel string) { d.m[app+"\x00"+device] = channel })
	return d, err
}

func (d *deviceChannels) get(app, device string) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.m[app+"\x00"+device]
}

func (d *deviceChannels) set(app, device, channel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if channel == "" {
		delete(d.m, app+"\x00"+device)
	} else {
		d.m[app+"\x00"+device] = channel
	}
}

// deviceChannel is the channel a device follows: the one it chose, else
// the plugin's defaultChannel, else production.
func (s *Server) deviceChannel(app, device, defaultChannel string) string {
	if c := s.chans.get(app, device); c != "" {
		return c
	}
	if defaultChannel != "" {
		return defaultChannel
	}
	return manifest.DefaultChannel
}

// channelAnswer is the plugin's answer to setChannel, getChannel and
// unsetChannel. A refusal has Error and Message, with HTTP 200 so that the
// plugin shows the message.
type channelAnswer struct {
	Status   string `json:"status,omitempty"`
	Channel  string `json:"channel,omitempty"`
	AllowSet *bool  `json:"allowSet,omitempty"`
	Error    string `json:"error,omitempty"`
	Message  string `json:"message,omitempty"`
}

// channelRequest reads the plugin's request of a channel route: the app
// from the path, the device and (for setChannel) the channel from the JSON
// body. It answers the request itself on error.
func (s *Server) channelRequest(w http.ResponseWriter, r *http.Request) (app, device string, req capgoRequest, ok bool) {
	app = r.PathValue("app")
	err := checkName("app", app)
	var body []byte
	if err == nil {
		body, err = s.readBody(w, r)
	}
	if err == nil {
		err = decodeJSON(body, &req)
	}
	if err == nil {
		device, err = checkDevice(string(req.DeviceID))
	}
	if err != nil {
		s.writeError(w, r, err)
		return "", "", req, false
	}
	return app, device, req, s.allowDevice(w, r, device)
}

// handleSetChannel answers POST /capgo/{app}/channel, the plugin's
// setChannel: the device follows {"channel"} from now on, if that channel's
// signed settings allow devices to choose it (self_assign).
func (s *Server) handleSetChannel(w http.ResponseWriter, r *http.Request) {
	app, device, req, ok := s.channelRequest(w, r)
	if !ok {
		return
	}
	channel := string(req.Channel)
	if err := manifest.CheckName("channel", channel); err != nil {
		writeJSON(w, http.StatusOK, channelAnswer{Error: "invalid_channel", Message: err.Error()})
		return
	}
	rel, err := s.man.release(r.Context(), app, channel)
	if err != nil {
		ae := s.asAppError(r, err)
		writeJSON(w, http.StatusOK, channelAnswer{Error: "channel_not_found", Message: ae.Message})
		return
	}
	if !rel.pointer.Settings.SelfAssign {
		writeJSON(w, http.StatusOK, channelAnswer{Error: "channel_self_set_not_allowed",
			Message: fmt.Sprintf("channel %s does not let devices choose it; its uploaders can allow it in the channel's settings (self_assign)", channel)})
		return
	}
	if err := s.state.SetChannel(r.Context(), app, device, channel); err != nil {
		s.writeError(w, r, &appError{Code: codeUnavailable, Message: "the channel cannot be stored right now; try again later", Err: err})
		return
	}
	s.chans.set(app, device, channel)
	writeJSON(w, http.StatusOK, channelAnswer{Status: "ok", Message: fmt.Sprintf("this device follows channel %s", channel)})
}

// handleGetChannel answers PUT /capgo/{app}/channel, the plugin's
// getChannel: {"channel", "status": "override" (chosen with setChannel) or
// "default", "allowSet"}. allowSet is whether that channel lets devices
// choose it (self_assign), as Capgo's server answers it; it is always
// there, since the plugin takes a missing one for true. It is false when
// the channel's pointer cannot be read or verified.
func (s *Server) handleGetChannel(w http.ResponseWriter, r *http.Request) {
	app, device, req, ok := s.channelRequest(w, r)
	if !ok {
		return
	}
	a := channelAnswer{Status: "default", Channel: s.deviceChannel(app, device, string(req.DefaultChannel))}
	if s.chans.get(app, device) != "" {
		a.Status = "override"
	}
	rel, err := s.man.release(r.Context(), app, a.Channel)
	allow := err == nil && rel.pointer.Settings.SelfAssign
	a.AllowSet = &allow
	writeJSON(w, http.StatusOK, a)
}

// handleUnsetChannel answers DELETE /capgo/{app}/channel, the plugin's
// unsetChannel: the device follows its defaultChannel again.
func (s *Server) handleUnsetChannel(w http.ResponseWriter, r *http.Request) {
	app, device, _, ok := s.channelRequest(w, r)
	if !ok {
		return
	}
	if err := s.state.SetChannel(r.Context(), app, device, ""); err != nil {
		s.writeError(w, r, &appError{Code: codeUnavailable, Message: "the channel cannot be stored right now; try again later", Err: err})
		return
	}
	s.chans.set(app, device, "")
	writeJSON(w, http.StatusOK, channelAnswer{Status: "ok", Message: "this device follows its default channel again"})
}

// selfChannel is one entry of the listChannels answer.
type selfChannel struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Public       bool   `json:"public"` // the default channel
	AllowSelfSet bool   `json:"allow_self_set"`
}

// handleListChannels answers GET /capgo/{app}/channel, the plugin's
// listChannels: the channels devices may choose, as a JSON array.
func (s *Server) handleListChannels(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if err := checkName("app", app); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.selfAssignable(r.Context(), app)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// selfAssignable lists the channels of app whose verified pointer lets
// devices choose them.
func (s *Server) selfAssignable(ctx context.Context, app string) ([]selfChannel, error) {
	names, err := s.src.channelNames(ctx, manifest.ChannelsPrefix(app))
	if err != nil {
		return nil, &appError{Code: codeUnavailable, Message: "the update store cannot be read right now; try again later", Err: err}
	}
	out := []selfChannel{}
	for _, name := range names[app] {
		if rel, err := s.man.release(ctx, app, name); err == nil && rel.pointer.Settings.SelfAssign {
			out = append(out, selfChannel{ID: name, Name: name, Public: name == manifest.DefaultChannel, AllowSelfSet: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
