using TorchSharp;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Runtime;

[Collection("Torch")]
public class TorchLoadTests
{
    [Fact]
    public void Torch_initialises_and_computes_a_known_matmul()
    {
        // [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]]
        using var a = torch.tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        using var b = torch.tensor(new float[] { 5, 6, 7, 8 }).reshape(2, 2);
        using var c = torch.matmul(a, b);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, c.data<float>().ToArray());
        Assert.Equal(2, torch.get_num_threads());
    }
}
