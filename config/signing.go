package config

import (
	"fmt"
	"slices"
)

// configSigningKey is "config-signing-key PREFIX.pub": a public key whose
// signed bundles (sluice -B) are then the only configuration the master
// accepts. Several lines are allowed, so that a fleet can rotate keys: a
// bundle signed by any one of them is accepted. The file is read and
// checked by the master (and by sluice -c), which knows the key format.
func (p *parser) configSigningKey(s *stmt) error {
	path, err := oneArg(s, "a public key file (PREFIX.pub of 'sluice bundle keygen')")
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(p.global.ConfigSigningKeys, func(k SigningKey) bool { return k.Path == path }); i >= 0 {
		return fmt.Errorf("'%s': %s already given at %s", s.name, path, p.global.ConfigSigningKeys[i].Pos)
	}
	p.global.ConfigSigningKeys = append(p.global.ConfigSigningKeys, SigningKey{Path: path, Pos: s.pos})
	return nil
}
