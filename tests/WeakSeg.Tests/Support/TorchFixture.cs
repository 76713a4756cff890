using TorchSharp;
using WeakSeg.Runtime;

namespace WeakSeg.Tests.Support;

/// <summary>libtorch state is global: tests that use torch join the "Torch" collection (run sequentially, 2 threads).</summary>
public sealed class TorchFixture
{
    public TorchFixture()
    {
        TorchRuntime.Initialize("cpu", threads: 2);
        torch.set_default_dtype(torch.float32);
    }
}

[CollectionDefinition("Torch")]
public sealed class TorchCollection : ICollectionFixture<TorchFixture> { }
