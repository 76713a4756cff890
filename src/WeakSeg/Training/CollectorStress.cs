namespace WeakSeg.Training;

/// <summary>
/// A check for the native-interop bugs a garbage collection exposes: with <c>WEAKSEG_GC_STRESS=1</c> in the environment, training runs
/// a thread that forces gen-0 collections and runs the finalizers they queue, back to back, for as long as the trainer runs. A
/// TorchSharp object that nothing keeps reachable during a native call (a temporary Scalar passed to libtorch) is then freed within
/// the first steps, so the failure ("Unknown scalar type") is immediate instead of rare. Slows training down; for tests and diagnosis.
/// </summary>
public sealed class CollectorStress : IDisposable
{
    /// <summary>The environment variable that turns the stress on (value 1).</summary>
    public const string EnvironmentVariable = "WEAKSEG_GC_STRESS";

    readonly Thread _thread;
    volatile bool _stop;
    int _collections;

    /// <summary>Collections forced so far.</summary>
    public int Collections => Volatile.Read(ref _collections);

    CollectorStress()
    {
        _thread = new Thread(() =>
        {
            while (!_stop)
            {
                GC.Collect(0, GCCollectionMode.Forced, blocking: true);
                GC.WaitForPendingFinalizers();
                Interlocked.Increment(ref _collections);
            }
        }) { IsBackground = true, Name = "gc-stress" };
        _thread.Start();
    }

    /// <summary>Starts the stress thread; it stops when disposed.</summary>
    public static CollectorStress Start() => new();

    /// <summary>Starts the stress thread when <see cref="EnvironmentVariable"/> is 1; null otherwise.</summary>
    public static CollectorStress? StartIfRequested() => Environment.GetEnvironmentVariable(EnvironmentVariable) == "1" ? Start() : null;

    public void Dispose()
    {
        _stop = true;
        if (_thread.IsAlive) _thread.Join();
    }
}
