namespace WeakSeg.Runtime;

/// <summary>What <see cref="NnpackSwitch"/> found and did.</summary>
public enum NnpackState
{
    /// <summary>libtorch not probed yet.</summary>
    NotProbed,
    /// <summary>NNPACK initialised on this CPU: left as libtorch has it.</summary>
    Available,
    /// <summary>NNPACK cannot run on this CPU: turned off, so libtorch stops trying (and warning) on every convolution.</summary>
    UnavailableTurnedOff,
    /// <summary>This libtorch does not export the functions needed to ask; nothing changed.</summary>
    NotExported,
}

/// <summary>
/// On a CPU that NNPACK does not support (it reports "Unsupported hardware", as on some AMD EPYC virtual machines), libtorch still
/// asks NNPACK on every eligible CPU convolution and logs "Could not initialize NNPACK! Reason: Unsupported hardware." each time:
/// tens of thousands of lines in one training run. TorchSharp has no switch for it, so after libtorch loads this asks
/// <c>at::native::_nnpack_available()</c> once (its own warning silenced for that call) and, when the answer is no, calls
/// <c>at::globalContext().setUserEnabledNNPACK(false)</c>, as PyTorch's <c>torch.backends.nnpack.set_flags(False)</c> does. Results
/// cannot change: NNPACK could not run there anyway, and where it can, nothing is touched.
/// </summary>
public static class NnpackSwitch
{
    const string AvailableSymbol = "_ZN2at6native17_nnpack_availableEv";                 // bool at::native::_nnpack_available()
    const string LogLevelSymbol = "FLAGS_caffe2_log_level";                              // c10's minimum level of logged messages
    const int ErrorLevel = 2;

    static readonly object Gate = new();

    /// <summary>bool at::Context::userEnabledNNPACK() const / void at::Context::setUserEnabledNNPACK(bool).</summary>
    static readonly LibTorchContextFlag UserFlag = new("_ZNK2at7Context17userEnabledNNPACKEv", "_ZN2at7Context20setUserEnabledNNPACKEb");

    /// <summary>The outcome of the probe (<see cref="NnpackState.NotProbed"/> before libtorch loads).</summary>
    public static NnpackState State { get; private set; } = NnpackState.NotProbed;

    /// <summary>Whether libtorch would try NNPACK now (its user flag); null when the flag cannot be read.</summary>
    public static bool? UserEnabled => UserFlag.Value;

    /// <summary>Probes once, after libtorch has loaded (<see cref="TorchRuntime.EnsureLoaded"/> calls it).</summary>
    internal static unsafe void Apply()
    {
        lock (Gate)
        {
            if (State != NnpackState.NotProbed) return;
            if (!LibTorchContextFlag.TryExport(AvailableSymbol, out var availableFunction) ||
                !LibTorchContextFlag.TryExport(LogLevelSymbol, out var logLevel) || !UserFlag.IsExported)
            {
                State = NnpackState.NotExported;
                return;
            }
            var level = (int*)logLevel;
            int previous = *level;
            bool available;
            *level = Math.Max(previous, ErrorLevel);                                      // the probe's own warning is not news
            try { available = ((delegate* unmanaged<byte>)availableFunction)() != 0; }
            finally { *level = previous; }
            if (available)
            {
                State = NnpackState.Available;
                return;
            }
            UserFlag.TrySet(false);
            State = NnpackState.UnavailableTurnedOff;
        }
    }
}
