import { useState } from 'react';

// Asks for the supervisor's API key, needed for every supervisor call but its health: the
// service list, the event stream, logs, and start / stop / restart. Kept in sessionStorage.
export default function ApiKeyForm({ message, onSave }) {
  const [value, setValue] = useState('');
  const submit = (event) => {
    event.preventDefault();
    const key = value.trim();
    if (key) {
      onSave(key);
      setValue('');
    }
  };
  return (
    <form className="api-key-form" onSubmit={submit}>
      {message && <p className="api-key-message">{message}</p>}
      <label>
        API key
        <input
          data-testid="api-key-input"
          type="password"
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          placeholder="X-API-Key of the supervisor"
        />
      </label>
      <button type="submit" data-testid="api-key-save" disabled={!value.trim()}>Save</button>
    </form>
  );
}
