// confcast/status.hpp - what a CONFCAST_* status means, and the exception
// the throwing C++ conveniences raise.
//
// Every reader call has a noexcept form that returns one of the codes of
// confcast.h (the C ABI returns them unchanged), and the C++ façade adds
// throwing conveniences that carry the same code in confcast::Error, so a
// caller can switch on it whichever style it uses.
//
// Threading: StatusMessage returns static strings; Error is an ordinary
// exception value.
#ifndef CONFCAST_STATUS_HPP_
#define CONFCAST_STATUS_HPP_

#include <stdexcept>
#include <string>

#include "confcast/confcast.h"

namespace confcast {

// The message of a CONFCAST_* status (what confcast_strerror returns). Never null.
const char* StatusMessage(int status) noexcept;

class Error : public std::runtime_error {
 public:
  Error(int status, const std::string& context)
      : std::runtime_error(context.empty() ? StatusMessage(status) : context + ": " + StatusMessage(status)),
        status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

}  // namespace confcast

#endif  // CONFCAST_STATUS_HPP_
