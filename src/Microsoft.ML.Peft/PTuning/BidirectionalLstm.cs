using System.Globalization;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.PTuning;

/// <summary>
/// torch.nn.LSTM(bidirectional=True, batch_first=True) over one sequence [seq, input] → [seq, 2·hidden] (forward
/// states, then backward states, per position), built from autograd ops. Gates in torch's order i, f, g, o:
/// c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c'), with the input projections of all steps done as one matrix product.
/// Only P-tuning's prompt encoder uses it (a few dozen steps), so the per-step ops are not fused.
/// </summary>
internal sealed class BidirectionalLstm : Module
{
    private readonly int hidden;
    private readonly int layers;
    private readonly List<Parameter[]> weights = [];

    public BidirectionalLstm(int input, int hidden, int layers, Generator generator)
    {
        this.hidden = hidden;
        this.layers = layers;
        float bound = 1f / MathF.Sqrt(hidden);
        for (int l = 0; l < layers; l++)
        {
            int inSize = l == 0 ? input : 2 * hidden;
            foreach (var suffix in new[] { "", "_reverse" })
            {
                string k = l.ToString(CultureInfo.InvariantCulture) + suffix;
                Tensor wih, whh, bih, bhh;
                using (TensorScope.Untracked())
                {
                    wih = Tensor.Empty(4 * hidden, inSize).Uniform_(generator, -bound, bound);
                    whh = Tensor.Empty(4 * hidden, hidden).Uniform_(generator, -bound, bound);
                    bih = Tensor.Empty(4 * hidden).Uniform_(generator, -bound, bound);
                    bhh = Tensor.Empty(4 * hidden).Uniform_(generator, -bound, bound);
                }
                weights.Add([RegisterParameter("weight_ih_l" + k, wih), RegisterParameter("weight_hh_l" + k, whh), RegisterParameter("bias_ih_l" + k, bih), RegisterParameter("bias_hh_l" + k, bhh)]);
            }
        }
    }

    /// <summary>[seq, input] → [seq, 2·hidden].</summary>
    public Tensor Forward(Tensor x)
    {
        for (int l = 0; l < layers; l++)
        {
            var forward = Direction(x, weights[2 * l], reverse: false);
            var backward = Direction(x, weights[2 * l + 1], reverse: true);
            x = Tensor.Concat([forward, backward], 1);
        }
        return x;
    }

    private Tensor Direction(Tensor x, Parameter[] w, bool reverse)
    {
        int seq = x.Size(0);
        var projected = x.Linear(w[0].Value, w[2].Value).Add(w[3].Value); // [seq, 4h]: x·W_ihᵀ + b_ih + b_hh
        var outputs = new Tensor[seq];
        Tensor? h = null, c = null;
        for (int s = 0; s < seq; s++)
        {
            int t = reverse ? seq - 1 - s : s;
            var gates = projected.Narrow(0, t, 1);
            if (h is not null) gates = gates.Add(h.Linear(w[1].Value));
            var i = gates.Narrow(1, 0, hidden).Sigmoid();
            var f = gates.Narrow(1, hidden, hidden).Sigmoid();
            var g = gates.Narrow(1, 2 * hidden, hidden).Tanh();
            var o = gates.Narrow(1, 3 * hidden, hidden).Sigmoid();
            c = c is null ? i.Mul(g) : f.Mul(c).Add(i.Mul(g));
            h = o.Mul(c.Tanh());
            outputs[t] = h;
        }
        return Tensor.Concat(outputs, 0);
    }
}
